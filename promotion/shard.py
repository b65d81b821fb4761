"""A shard of users: a sessions engine, the users' profiles, and the rules document in force.

The dataflow keys state by shard (a stable hash of user_id), not by user: one Bytewax key per
shard keeps per-item overhead and the number of pending wall-clock timers small. The sessions
themselves are kept by `promotion.sessions.ShardSessions`; this shell adds what follows a
session's close: the order closed sessions come out in, the users' profiles, and the facts rules
see. The compiled kernel implements the same and is held to it by differential tests.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from promotion.events import PAYMENT_COMPLETE
from promotion.facts import SessionFacts, session_facts
from promotion.profiles import DAY_MS, NO_PROFILE, LazyProfile, Profile, record_session
from promotion.routing import ShardBatch
from promotion.sessions import ClosedSession, LateEvent, ShardSessions, ordered
from promotion.snapshot import SNAPSHOT_VERSION, encode_state, load_state

__all__ = ["SNAPSHOT_VERSION", "LateEvent", "SessionConfig", "SessionShard", "ShardResult"]


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Session semantics, all in milliseconds."""

    gap_ms: int = 300_000
    lateness_ms: int = 0
    idle_timeout_ms: int = 30_000
    profile_ttl_ms: int = 30 * DAY_MS  # 0: keep no cross-session profiles

    def __post_init__(self) -> None:
        if self.gap_ms <= 0:
            raise ValueError("gap must be positive")
        if self.lateness_ms < 0:
            raise ValueError("allowed lateness must not be negative")
        if self.idle_timeout_ms <= 0:
            raise ValueError("idle timeout must be positive")
        if self.profile_ttl_ms < 0:
            raise ValueError("profile TTL must not be negative")


class ShardResult(NamedTuple):
    closed: list[SessionFacts]
    late: list[LateEvent]


class SessionShard:
    """Open sessions and profiles of the users of one shard."""

    def __init__(
        self,
        config: SessionConfig,
        partitions: Iterable[str],
        now_ms: int,
    ) -> None:
        self.config = config
        self.sessions = ShardSessions(
            config.gap_ms, config.lateness_ms, config.idle_timeout_ms, list(partitions), now_ms
        )
        #: Cross-session profiles, and a heap of (expiry, user_id) to drop them after the TTL.
        self.profiles: dict[str, Profile] = {}
        self._expiries: list[tuple[int, str]] = []
        #: The rules document this shard decides with, kept in snapshots so that a replay after
        #: a crash switches rules at the same point of the stream. Opaque to the shard.
        self.rules_document: dict | None = None

    # -- input ---------------------------------------------------------------------------------

    def on_batch(self, work: ShardBatch, now_ms: int) -> ShardResult:
        """This shard's share of one batch of one input partition."""
        closed, late = self.sessions.on_batch(work.partition, work.events, work.highs_before,
                                              work.batch_high, now_ms, work.final)
        return ShardResult(self._finish(closed), late)

    def on_tick(self, now_ms: int) -> list[SessionFacts]:
        """Wall-clock progress: idle partitions stop holding back; all idle moves time on."""
        return self._finish(self.sessions.on_tick(now_ms))

    def on_eof(self) -> list[SessionFacts]:
        """End of a bounded input: close every open session."""
        return self._finish(self.sessions.on_eof())

    @property
    def open_users(self) -> int:
        return self.sessions.open_users

    @property
    def watermark(self) -> int:
        return self.sessions.watermark_value

    def take_counts(self) -> tuple[int, int]:
        """(sessions started, repeated events dropped) since the last call."""
        return self.sessions.take_counts()

    # -- closing and profiles -----------------------------------------------------------------

    def _finish(self, closed: list[ClosedSession]) -> list[SessionFacts]:
        """Facts for the rules (with the profile as it was), then fold each session into it."""
        closed = ordered(closed, self.config.gap_ms)
        ttl = self.config.profile_ttl_ms
        if not ttl:
            return [session_facts(c.user_id, c.session, c.close_reason) for c in closed]
        profiles = self.profiles
        out = []
        for user_id, session, reason in closed:
            profile = profiles.get(user_id)
            if profile is not None and profile.last_ts + ttl < session.start:
                profile = None  # expired by the session's own time, however batches fell
            seen = LazyProfile(profile, session.start) if profile is not None else NO_PROFILE
            facts = session_facts(user_id, session, reason, seen)
            if profile is None:
                profile = profiles[user_id] = Profile()
                heapq.heappush(self._expiries, (session.end + ttl, user_id))
            record_session(profile, session.end, facts.type_counts[PAYMENT_COMPLETE] > 0,
                           facts.viewed_categories)
            out.append(facts)
        # Only now: a profile whose user has just closed a session must see that session first.
        value = self.sessions.watermark_value
        if self._expiries and self._expiries[0][0] < value:
            self._expire_profiles(value)
        return out

    def _expire_profiles(self, watermark: int) -> None:
        expiries, profiles, ttl = self._expiries, self.profiles, self.config.profile_ttl_ms
        while expiries and expiries[0][0] < watermark:
            _due, user_id = heapq.heappop(expiries)
            profile = profiles.get(user_id)
            if profile is None:
                continue
            due = profile.last_ts + ttl
            if due >= watermark:
                heapq.heappush(expiries, (due, user_id))
            elif user_id in self.sessions.users:  # an open session decides later whether it sees it
                heapq.heappush(expiries, (watermark + self.config.gap_ms, user_id))
            else:
                del profiles[user_id]

    # -- recovery ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """A format-7 document (promotion.snapshot): sessions, profiles and rules."""
        return encode_state({"version": SNAPSHOT_VERSION, **self.sessions.state(),
                             "profiles": self.profiles, "rules": self.rules_document})

    @classmethod
    def restore(
        cls,
        config: SessionConfig,
        partitions: Iterable[str],
        now_ms: int,
        blob: bytes,
    ) -> SessionShard:
        state = load_state(blob)
        shard = cls(config, partitions, now_ms)
        shard.sessions.load(state, now_ms)
        shard.profiles = {uid: Profile(**p) for uid, p in state["profiles"].items()}
        ttl = config.profile_ttl_ms
        shard._expiries = [(p.last_ts + ttl, uid) for uid, p in shard.profiles.items()]
        heapq.heapify(shard._expiries)
        shard.rules_document = state["rules"]
        return shard
