"""A shard of users: their open sessions, one watermark, and timers that close sessions lazily.

The dataflow keys state by shard (a stable hash of user_id), not by user: one Bytewax key per
shard keeps per-item overhead and the number of pending wall-clock timers small. Within a shard,
deadlines bucketed by event time (`DeadlineWheel`) find the sessions the watermark has passed, so
an advancing watermark never scans all open sessions.
"""

from __future__ import annotations

import heapq
import io
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from promotion import sessions
from promotion.events import LOGOUT, PAYMENT_COMPLETE, TS, TYPE, USER_ID
from promotion.facts import END, START, SessionFacts, session_facts
from promotion.profiles import (
    DAY_MS,
    LAST_TS,
    NO_PROFILE,
    LazyProfile,
    new_profile,
    record_session,
)
from promotion.sessions import DEADLINE, ClosedSession
from promotion.timers import DeadlineWheel
from promotion.watermark import NO_TIME, Watermark

SNAPSHOT_VERSION: Final = 6
#: A user is settled at once whenever its list reaches a multiple of this length: raw events in
#: state stay bounded, and a burst of events within the lateness (which cannot settle yet) costs
#: one sort per this many arrivals, not one per arrival.
_SETTLE_EVERY: Final = 16


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


class LateEvent(NamedTuple):
    event: tuple
    watermark: int
    partition: str


class ShardResult(NamedTuple):
    closed: list[SessionFacts]
    late: list[LateEvent]


class SessionShard:
    """Open sessions of the users of one shard."""

    def __init__(
        self, config: SessionConfig, partitions: Iterable[str], now_ms: int
    ) -> None:
        self.config = config
        self.watermark = Watermark(
            partitions, config.lateness_ms, config.idle_timeout_ms, now_ms
        )
        self.users: dict[str, list] = {}
        self._timers = DeadlineWheel()
        #: Cross-session profiles, and a heap of (expiry, user_id) to drop them after the TTL.
        self.profiles: dict[str, list] = {}
        self._expiries: list[tuple[int, str]] = []
        #: The rules document this shard decides with, kept in snapshots so that a replay after
        #: a crash switches rules at the same point of the stream. Opaque to the shard.
        self.rules_document: dict | None = None
        #: Sessions started, and repeated events dropped, since the caller last reset these.
        self.opened = 0
        self.duplicates = 0

    # -- input ---------------------------------------------------------------------------------

    def on_batch(
        self,
        partition: str,
        events: Sequence[tuple],
        highs_before: Sequence[int],
        batch_high: int,
        now_ms: int,
        final: bool = False,
    ) -> ShardResult:
        """Process this shard's events from one batch of one input partition, in partition order.

        `highs_before[i]` is the partition's highest ts among the batch's records before event i
        (all shards' records), so lateness is decided exactly as if the shard saw the whole
        partition, whatever the batching.

        Arrival only appends an event to its user and lowers the user's deadline bound if the
        event can close something sooner; the user is settled and closed when that deadline
        comes (`_fire_timers`, or at once when its next event arrives after it) or when its
        pending events pile up.
        """
        wm = self.watermark
        closed: list[ClosedSession] = []
        late: list[LateEvent] = []
        if events:
            gap = self.config.gap_ms
            lateness = self.config.lateness_ms
            users = self.users
            timers = self._timers
            add_timer = timers.add
            floor = wm.floor_excluding(partition, now_ms)
            high = wm.high.get(partition, NO_TIME)
            value = wm.value
            candidate = (high if high < floor else floor) - lateness
            if candidate > value:
                value = candidate
            for event, before in zip(events, highs_before):
                # `before` covers every earlier record of the batch (this shard's too), so the
                # candidate watermark changes only when it grows.
                if before > high:
                    high = before
                    candidate = (high if high < floor else floor) - lateness
                    if candidate > value:
                        value = candidate
                ts = event[TS]
                if ts < value:
                    late.append(LateEvent(event, value, partition))
                    continue
                due = ts if event[TYPE] == LOGOUT else ts + gap  # sessions.event_deadline
                user_id = event[USER_ID]
                user = users.get(user_id)
                if user is not None:
                    # What the watermark has already closed is closed before this event joins,
                    # whatever the batching: a repeat of an event whose session has closed is a
                    # new event, not a retry within an open session.
                    if user.__class__ is tuple:
                        if sessions.event_deadline(user, gap) < value:
                            closed.append(sessions.close_light(user, value, gap, user_id))
                            self.opened += 1
                            user = None
                    elif user[DEADLINE] < value:
                        self._wake(user_id, user, value, closed)
                        user = users.get(user_id)
                if user is None:  # a light user: the event alone, its deadline derived
                    users[user_id] = event
                    add_timer(due, user_id)
                    continue
                if user.__class__ is tuple:
                    bound = sessions.event_deadline(user, gap)
                    user = users[user_id] = [bound, None, user, event]
                else:
                    user.append(event)
                    if not len(user) % _SETTLE_EVERY:  # bound raw events held: settle what can be
                        self._wake(user_id, user, value, closed)
                        continue
                if due < user[DEADLINE]:
                    user[DEADLINE] = due
                    add_timer(due, user_id)
            wm.value = value
            if high > wm.high.get(partition, NO_TIME):
                wm.high[partition] = high
        wm.end_batch(partition, batch_high, now_ms, final)
        self._fire_timers(closed)
        return ShardResult(self._finish(closed), late)

    def on_tick(self, now_ms: int) -> list[SessionFacts]:
        """Wall-clock progress: idle partitions stop holding back; all idle moves time on."""
        self.watermark.advance(now_ms)
        closed: list[ClosedSession] = []
        self._fire_timers(closed)
        return self._finish(closed)

    def on_eof(self) -> list[SessionFacts]:
        """End of a bounded input: close every open session."""
        closed: list[ClosedSession] = []
        gap = self.config.gap_ms
        watermark = self.watermark.value
        for user_id in sorted(self.users):
            user = self.users[user_id]
            if user.__class__ is tuple:  # a light user: its one event is a whole session
                closed.append(sessions.close_light(user, watermark, gap, user_id))
                self.opened += 1
                continue
            self.duplicates += sessions.tidy(user)
            self.opened += sessions.flush(user, watermark, gap, closed, user_id)
        self.users.clear()
        self._timers.clear()
        return self._finish(closed)

    @property
    def open_users(self) -> int:
        return len(self.users)

    # -- closing and profiles -----------------------------------------------------------------

    def _finish(self, closed: list[ClosedSession]) -> list[SessionFacts]:
        """Facts for the rules (with the profile as it was), then fold each session into it."""
        ttl = self.config.profile_ttl_ms
        if not ttl:
            return [session_facts(c.user_id, c.accumulator, c.close_reason) for c in closed]
        profiles = self.profiles
        out = []
        for user_id, acc, reason in closed:
            profile = profiles.get(user_id)
            if profile is not None and profile[LAST_TS] + ttl < acc[START]:
                profile = None  # expired by the session's own time, however batches fell
            seen = LazyProfile(profile, acc[START]) if profile is not None else NO_PROFILE
            facts = session_facts(user_id, acc, reason, seen)
            if profile is None:
                profile = profiles[user_id] = new_profile()
                heapq.heappush(self._expiries, (acc[END] + ttl, user_id))
            record_session(profile, acc[END], facts.type_counts[PAYMENT_COMPLETE] > 0,
                           facts.viewed_categories)
            out.append(facts)
        # Only now: a profile whose user has just closed a session must see that session first.
        value = self.watermark.value
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
            due = profile[LAST_TS] + ttl
            if due >= watermark:
                heapq.heappush(expiries, (due, user_id))
            elif user_id in self.users:  # an open session decides later whether it sees it
                heapq.heappush(expiries, (watermark + self.config.gap_ms, user_id))
            else:
                del profiles[user_id]

    # -- timers --------------------------------------------------------------------------------

    def _wake(self, user_id: str, user: list, value: int, closed: list[ClosedSession]) -> None:
        """Tidy and settle the user's pending events, close what the watermark has passed, and
        schedule its exact deadline (or drop the user when nothing is left open)."""
        gap = self.config.gap_ms
        self.duplicates += sessions.tidy(user)
        self.opened += sessions.settle(user, value, gap)
        sessions.close_ready(user, value, gap, closed, user_id)
        due = sessions.deadline(user, gap)
        if due is None:
            del self.users[user_id]
        elif due < user[DEADLINE] or user[DEADLINE] < value:
            user[DEADLINE] = due
            self._timers.add(due, user_id)
        # A later deadline keeps the earlier (unfired) entry; when it fires it wakes the user again.

    def _fire_timers(self, closed: list[ClosedSession]) -> None:
        timers = self._timers
        value = self.watermark.value
        gap = self.config.gap_ms
        users = self.users
        width = timers.width
        while (taken := timers.take_due(value)) is not None:
            number, members = taken
            waiting: dict[str, int] = {}  # user -> its deadline, in this bucket but not due
            for user_id in members:
                user = users.get(user_id)
                if user is None or user_id in waiting:
                    continue
                light = user.__class__ is tuple
                if light:  # sessions.event_deadline, inline: this loop runs once per session
                    due = user[TS] if user[TYPE] == LOGOUT else user[TS] + gap
                else:
                    due = user[DEADLINE]
                if due // width != number:
                    continue  # stale: the user's live entry is in another bucket
                if due >= value:
                    waiting[user_id] = due  # same bucket, not due yet
                    continue
                if light:  # its one event is a whole session, closable now
                    closed.append(sessions.close_light(user, value, gap, user_id))
                    self.opened += 1
                    del users[user_id]
                    continue
                self._wake(user_id, user, value, closed)
            if waiting:  # the watermark is inside this bucket: nothing later is due either
                for user_id, due in waiting.items():
                    timers.add(due, user_id)
                break

    def _due(self, user: list | tuple) -> int:
        if user.__class__ is tuple:
            return sessions.event_deadline(user, self.config.gap_ms)  # type: ignore[arg-type]
        return user[DEADLINE]

    # -- recovery ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Versioned plain data (builtins only), pickled now so later mutation cannot leak in."""
        state = {
            "version": SNAPSHOT_VERSION,
            "watermark": self.watermark.value,
            "high": dict(self.watermark.high),
            "users": self.users,
            "profiles": self.profiles,
            "rules": self.rules_document,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(
        cls, config: SessionConfig, partitions: Iterable[str], now_ms: int, blob: bytes
    ) -> SessionShard:
        state = load_snapshot(blob)
        shard = cls(config, partitions, now_ms)
        shard.watermark = Watermark(
            list(partitions) + list(state["high"]),
            config.lateness_ms,
            config.idle_timeout_ms,
            now_ms,
            high=state["high"],
            value=state["watermark"],
        )
        shard.users = state["users"]
        for uid, user in shard.users.items():
            shard._timers.add(shard._due(user), uid)
        shard.profiles = state["profiles"]
        ttl = config.profile_ttl_ms
        shard._expiries = [(p[LAST_TS] + ttl, uid) for uid, p in shard.profiles.items()]
        heapq.heapify(shard._expiries)
        shard.rules_document = state["rules"]
        return shard


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class lookup: snapshots must be builtins only."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"snapshot refers to {module}.{name}; only plain data allowed")


def load_snapshot(blob: bytes) -> dict:
    """Decode a shard snapshot, migrating older versions to the current one."""
    state = _PlainUnpickler(io.BytesIO(blob)).load()
    version = state.get("version") if isinstance(state, dict) else None
    if version == 1:  # v1 had no profiles and no rules document
        state = {**state, "version": 2, "profiles": {}, "rules": None}
        version = 2
    if version == 2:  # v2 kept settled and pending events in two nested lists per user
        users = {uid: sessions.migrate_v2(user) for uid, user in state["users"].items()}
        state = {**state, "version": 3, "users": users}
        version = 3
    if version == 3:  # v4 also allows a lone pending event tuple as a user's state
        state = {**state, "version": 4}
        version = 4
    if version == 4:  # v5 accumulators remember their event ids
        users = {uid: sessions.migrate_v4(user) for uid, user in state["users"].items()}
        state = {**state, "version": 5, "users": users}
        version = 5
    if version == 5:  # v6 pending events may be unsorted and repeated (tidied when settled)
        state = {**state, "version": 6}
        version = 6
    if version != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported shard snapshot version {version!r}")
    return state
