"""Why a user got (or did not get) a notification: the user's sessions, replayed and traced.

A user's sessions depend on other users' events through the watermark (it decides what is late
and when a session closes), so the whole input runs through the offline pipeline, the same code
the streaming job runs, with the job's settings; only the chosen user's sessions are reported.
Each comes with its events, close reason, every fact, the variant choice and every rule in
evaluation order (`promotion.rules` traces the one evaluator), and the notification it produced.
Events of the user that joined no session are reported too: late, repeated or rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import orjson

from promotion.decoding import DEFAULT_MAX_EVENT_BYTES, decode_many
from promotion.events import event_to_dict
from promotion.facts import SessionFacts
from promotion.notifications import build_notification
from promotion.pipeline import run_offline
from promotion.routing import DEFAULT_SHARDS
from promotion.rules import CompiledRules, Decision, RulesTrace, explain_decision, fact_values
from promotion.sessions import ClosedSession
from promotion.shard import SessionConfig, SessionShard
from promotion.timefmt import format_ms

#: What became of one of the user's records.
IN_SESSION, LATE, REPEAT, REJECTED = "session", "late", "repeat", "rejected"


@dataclass
class Arrival:
    """One of the user's input records, by line number (1-based, as in the dead-letter output)."""

    line: int
    fate: str  # IN_SESSION | LATE | REPEAT | REJECTED
    event: dict | None = None  # the normalised event (None when rejected)
    reason: str | None = None  # the rejection reason


@dataclass
class ExplainedSession:
    shard: str
    facts: SessionFacts
    events: list[Arrival]  # in session order: (ts, event_id)
    values: dict[str, object]  # every fact, by name
    decision: Decision | None
    trace: RulesTrace
    notification: dict | None


@dataclass
class Explanation:
    user_id: str
    rules_version: str
    records: int  # of the whole input
    sessions: list[ExplainedSession] = field(default_factory=list)
    unsessioned: list[Arrival] = field(default_factory=list)  # late, repeated and rejected


class _ObservingShard(SessionShard):
    """The specification's shard, noting the event ids of the watched user's closing sessions
    (the facts rules see no longer carry them)."""

    def __init__(self, key: str, config: SessionConfig, partitions: list[str], user_id: str,
                 seen: dict[tuple[int, str], tuple[str, frozenset[str]]]) -> None:
        super().__init__(config, partitions, now_ms=0)
        self._key, self._user_id, self._seen = key, user_id, seen

    def _finish(self, closed: list[ClosedSession]) -> list[SessionFacts]:
        for user_id, session, _reason in closed:
            if user_id == self._user_id:
                self._seen[(session.start, session.first_event_id)] = (
                    self._key, frozenset(session.event_ids))
        return super()._finish(closed)


def _needles(user_id: str) -> tuple[bytes, ...]:
    """How the id can appear in a raw record: as is, or JSON-escaped."""
    return (user_id.encode(), orjson.dumps(user_id)[1:-1])


def explain(lines: Iterable[bytes], user_id: str, config: SessionConfig, rules: CompiledRules, *,
            shards: int = DEFAULT_SHARDS, batch_size: int = 10_000, partition: str = "input",
            max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Explanation:
    """Replay every line as the job would and explain `user_id`'s sessions."""
    needles = _needles(user_id)
    candidates: list[tuple[int, bytes]] = []  # (line number, record) that may be the user's
    counted = [0]

    def watched(source: Iterable[bytes]) -> Iterator[bytes]:
        for number, line in enumerate(source, 1):
            counted[0] = number
            if any(n in line for n in needles):
                candidates.append((number, line))
            yield line

    seen: dict[tuple[int, str], tuple[str, frozenset[str]]] = {}
    result = run_offline(
        watched(lines), config, rules, shards=shards, batch_size=batch_size, partition=partition,
        max_event_bytes=max_event_bytes,
        shard_factory=lambda key, cfg, parts: _ObservingShard(key, cfg, parts, user_id, seen))
    closed = sorted((f for f in result.closed if f.user_id == user_id),
                    key=lambda f: (f.start, f.first_event_id))
    late = Counter(tuple(x.event) for x in result.late if x.event[2] == user_id)
    arrivals = _arrivals(candidates, user_id, max_event_bytes)
    explanation = Explanation(user_id, rules.version, counted[0])
    members = _assign(arrivals, closed, seen, late)
    for facts, events in zip(closed, members):
        decision, trace = explain_decision(rules, facts)
        notification = None if decision is None else build_notification(facts, decision, rules.version)
        shard = seen[(facts.start, facts.first_event_id)][0]
        explanation.sessions.append(ExplainedSession(
            shard, facts, events, fact_values(facts), decision, trace, notification))
    explanation.unsessioned = [a for a, _ in arrivals if a.fate != IN_SESSION]
    return explanation


def _arrivals(candidates: list[tuple[int, bytes]], user_id: str,
              max_event_bytes: int) -> list[tuple[Arrival, tuple | None]]:
    """The user's records in arrival order, decoded as the job decodes them."""
    events, rejections = decode_many([line for _, line in candidates], max_event_bytes)
    rejected = dict(rejections)
    decoded = iter(events)
    out: list[tuple[Arrival, tuple | None]] = []
    for index, (number, line) in enumerate(candidates):
        if index in rejected:
            if _names_user(line, user_id):
                out.append((Arrival(number, REJECTED, reason=rejected[index].reason), None))
            continue
        event = next(decoded)
        if event[2] == user_id:
            out.append((Arrival(number, REPEAT, event_to_dict(event)), event))
    return out


def _names_user(line: bytes, user_id: str) -> bool:
    """Whether a rejected record's `user_id` field is this user (when it is JSON at all)."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("user_id") == user_id


def _assign(arrivals: list[tuple[Arrival, tuple | None]], closed: list[SessionFacts],
            seen: dict[tuple[int, str], tuple[str, frozenset[str]]],
            late: Counter) -> list[list[Arrival]]:
    """Each closed session's events. An arrival the engine kept belongs to the first session that
    holds its id and its time, and was not claimed by an earlier arrival (the first one wins);
    late arrivals are matched by value; the rest were repeats of an open session's event."""
    members: list[list[Arrival]] = [[] for _ in closed]
    claimed: set[tuple[int, str]] = set()
    for arrival, event in arrivals:
        if event is None:
            continue
        if late[tuple(event)]:
            late[tuple(event)] -= 1
            arrival.fate = LATE
            continue
        ts, event_id = event[0], event[1]
        for n, facts in enumerate(closed):
            ids = seen[(facts.start, facts.first_event_id)][1]
            if (event_id in ids and facts.start <= ts <= facts.end
                    and (n, event_id) not in claimed):
                claimed.add((n, event_id))
                arrival.fate = IN_SESSION
                members[n].append(arrival)
                break
    for events in members:
        events.sort(key=lambda a: (a.event["ts"], a.event["event_id"]))  # type: ignore[index]
    return members


def as_dict(explanation: Explanation) -> dict:
    """The explanation as plain JSON-ready data."""
    return {
        "user_id": explanation.user_id,
        "rules_version": explanation.rules_version,
        "records": explanation.records,
        "sessions": [_session_dict(s) for s in explanation.sessions],
        "not_in_a_session": [_arrival_dict(a) for a in explanation.unsessioned],
    }


def _session_dict(s: ExplainedSession) -> dict:
    f = s.facts
    return {
        "shard": s.shard, "start": format_ms(f.start), "end": format_ms(f.end),
        "first_event_id": f.first_event_id, "close_reason": f.close_reason,
        "events": [_arrival_dict(a) for a in s.events],
        "facts": s.values,
        "variant": s.trace.variant,
        "variants": [asdict(v) for v in s.trace.variants],
        "rules": [asdict(r) for r in s.trace.rules],
        "decision": None if s.decision is None else s.decision._asdict(),
        "notification": s.notification,
    }


def _arrival_dict(a: Arrival) -> dict:
    out: dict = {"line": a.line, "fate": a.fate}
    if a.event is not None:
        out["event"] = a.event
    if a.reason is not None:
        out["reason"] = a.reason
    return out
