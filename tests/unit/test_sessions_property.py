"""The streaming core against the independent whole-input reference, on random streams."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from promotion.timefmt import format_ms
from tests.reference import reference_sessions

RULES = load_rules(DEFAULT_RULES_PATH)
TYPES = ["login", "logout", "product_view", "add_to_cart", "remove_from_cart",
         "checkout_start", "payment_complete"]
GAP = 100


@st.composite
def timelines(draw: st.DrawFn) -> list[dict]:
    """Events of a few users with small timestamps, so gaps, ties and logouts collide often."""
    n = draw(st.integers(1, 40))
    events = []
    ts = 1_000
    for i in range(n):
        ts += draw(st.sampled_from([0, 0, 1, 5, 30, 99, 100, 101, 150, 400]))
        kind = draw(st.sampled_from(TYPES))
        event = {
            "event_id": f"e{draw(st.integers(0, 10**6)):07d}-{i}",
            "user_id": draw(st.sampled_from(["ann", "bob", "cyd"])),
            "type": kind,
            "ts": ts if draw(st.booleans()) else format_ms(ts).replace("Z", "+00:00"),
            "source": "test",
        }
        if kind in ("product_view", "add_to_cart", "remove_from_cart") or draw(st.booleans()):
            event["product_id"] = draw(st.sampled_from(["p1", "p2", "p3"]))
        if kind in ("add_to_cart", "remove_from_cart") and draw(st.booleans()):
            event["quantity"] = draw(st.integers(1, 3))
        events.append(event)
    return events


def _decoded(event: dict) -> dict:
    ts = event["ts"]
    if isinstance(ts, str):
        from promotion.timefmt import parse_rfc3339_ms

        ts = parse_rfc3339_ms(ts)
    return {**event, "ts": ts}


def _ours(result) -> list[tuple]:
    return sorted((f.user_id, f.start, f.end, f.events, f.close_reason) for f in result.closed)


def _theirs(sessions) -> list[tuple]:
    return sorted((s.user_id, s.start, s.end, len(s.event_ids), s.close_reason) for s in sessions)


def _decisions_ours(result) -> list[tuple]:
    return sorted(
        (n["user_id"], n["session"]["start"], n["action"], n["rule"], tuple(n["products"]))
        for n in result.notifications
    )


def _decisions_theirs(sessions) -> list[tuple]:
    return sorted(
        (s.user_id, format_ms(s.start), s.action, s.rule, s.products)
        for s in sessions
        if s.action is not None
    )


def _check(arrival: list[dict], lateness: int, batch_size: int, shards: int) -> None:
    lines = [orjson.dumps(e) for e in arrival]
    config = SessionConfig(gap_ms=GAP, lateness_ms=lateness, profile_ttl_ms=0)
    result = run_offline(lines, config, RULES, shards=shards, batch_size=batch_size)
    sessions, late = reference_sessions([_decoded(e) for e in arrival], GAP, lateness)
    assert sorted(l.event[1] for l in result.late) == sorted(e["event_id"] for e in late)
    assert _ours(result) == _theirs(sessions)
    assert _decisions_ours(result) == _decisions_theirs(sessions)


@settings(max_examples=400, deadline=None)
@given(
    timelines(),
    st.randoms(use_true_random=False),
    st.integers(0, 300),
    st.integers(1, 7),
    st.integers(1, 4),
)
def test_any_arrival_order_matches_reference(events, rnd, lateness, batch_size, shards) -> None:
    """Arbitrary disorder: same late events, sessions, close reasons and decisions."""
    arrival = list(events)
    rnd.shuffle(arrival)
    _check(arrival, lateness, batch_size, shards)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.randoms(use_true_random=False), st.integers(0, 300), st.integers(1, 7))
def test_disorder_within_lateness_changes_nothing(events, rnd, lateness, batch_size) -> None:
    """Shuffled within the allowed lateness: no late event, and the sorted input's sessions."""
    delayed = sorted(
        events, key=lambda e: _decoded(e)["ts"] + rnd.randint(0, lateness)
    )
    config = SessionConfig(gap_ms=GAP, lateness_ms=lateness)
    shuffled = run_offline([orjson.dumps(e) for e in delayed], config, RULES, batch_size=batch_size)
    in_order = run_offline(
        [orjson.dumps(e) for e in sorted(events, key=lambda e: (_decoded(e)["ts"], e["event_id"]))],
        config,
        RULES,
    )
    assert shuffled.late == []
    assert _ours(shuffled) == _ours(in_order)
    assert sorted(n["notification_id"] for n in shuffled.notifications) == sorted(
        n["notification_id"] for n in in_order.notifications
    )


@settings(max_examples=200, deadline=None)
@given(timelines(), st.integers(0, 300))
def test_duplicated_events_are_ignored(events, lateness) -> None:
    """A producer retry right after the original changes nothing."""
    doubled = [copy for e in events for copy in (e, e)]
    config = SessionConfig(gap_ms=GAP, lateness_ms=lateness)
    once = run_offline([orjson.dumps(e) for e in events], config, RULES)
    twice = run_offline([orjson.dumps(e) for e in doubled], config, RULES)
    assert _ours(once) == _ours(twice)
    assert twice.duplicates == len(events) - len(once.late)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.randoms(use_true_random=False), st.integers(0, 300), st.integers(1, 5),
       st.data())
def test_retries_with_other_timestamps_are_ignored(events, rnd, lateness, batch_size, data) -> None:
    """A repeated event_id is the same event, even re-sent with another ts.

    Retries come within one gap of the original: then "ignored within the user's open session"
    (the service) and "ignored for the user" (the reference) agree, because by the time the
    session is closed the watermark is past the retry, which is then late.
    """
    # A logout closes its session before end + gap, so a retry stamped after the logout opens a
    # new session here (per the spec), while the reference drops it: keep logouts out.
    events = [{**e, "type": "login"} if e["type"] == "logout" else e for e in events]
    retries = []
    for event in events:
        if rnd.random() < 0.3:
            later = {**event, "ts": _decoded(event)["ts"] + data.draw(st.integers(0, GAP))}
            retries.append(later)
    arrival = list(events) + retries
    rnd.shuffle(arrival)
    _check(arrival, lateness, batch_size, shards=2)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.randoms(use_true_random=False), st.integers(0, 300), st.data())
def test_retries_are_judged_at_arrival_whatever_the_batching(events, rnd, lateness, data) -> None:
    """Any retries (logouts too, any timestamp): one record per batch, one batch for everything,
    or anything between give the same sessions, late events and repeats dropped. Whether a
    repeat falls in an open session is decided at its arrival, not when the shard next looks."""
    retries = [{**e, "ts": _decoded(e)["ts"] + data.draw(st.integers(-GAP, 4 * GAP))}
               for e in events if rnd.random() < 0.4]
    arrival = list(events) + retries
    rnd.shuffle(arrival)
    lines = [orjson.dumps(e) for e in arrival]
    config = SessionConfig(gap_ms=GAP, lateness_ms=lateness, profile_ttl_ms=0)
    runs = [run_offline(lines, config, RULES, shards=shards, batch_size=size)
            for size, shards in ((1, 1), (len(lines), 1), (data.draw(st.integers(2, 7)), 3))]
    shapes = [(_ours(r), sorted(l.event[1] for l in r.late), r.duplicates, _decisions_ours(r))
              for r in runs]
    assert shapes[0] == shapes[1] == shapes[2]


def _sessions_of(records: list[dict], batch_size: int) -> tuple[list[tuple], int]:
    config = SessionConfig(gap_ms=1_000, lateness_ms=0, profile_ttl_ms=0)
    result = run_offline([orjson.dumps(r) for r in records], config, RULES, shards=1,
                         batch_size=batch_size)
    return _ours(result), result.duplicates


def _rec(event_id: str, user: str, kind: str, ts: int) -> dict:
    return {"event_id": event_id, "user_id": user, "type": kind, "ts": ts, "source": "test"}


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_repeat_after_its_session_closed_is_a_new_event(batch_size: int) -> None:
    # e1's session [0] closes at 1000 + gap; the repeat arrives at watermark 1600: a new event.
    records = [_rec("e1", "a", "login", 0), _rec("e2", "a", "login", 1500),
               _rec("e3", "a", "login", 1600), _rec("e1", "a", "login", 1700)]
    assert _sessions_of(records, batch_size) == (
        [("a", 0, 0, 1, "gap"), ("a", 1500, 1700, 3, "eof")], 0)
    # The same after a logout, which closes its session at once.
    records = [_rec("e1", "a", "logout", 1000), _rec("e2", "a", "login", 2000),
               _rec("e3", "a", "login", 2001), _rec("e1", "a", "logout", 2500)]
    assert _sessions_of(records, batch_size) == (
        [("a", 1000, 1000, 1, "logout"), ("a", 2000, 2500, 3, "logout")], 0)
    # And when another user's event moved the watermark past a one-event session.
    records = [_rec("e1", "a", "login", 0), _rec("x", "b", "login", 1500),
               _rec("e1", "a", "login", 1600)]
    assert _sessions_of(records, batch_size) == (
        [("a", 0, 0, 1, "gap"), ("a", 1600, 1600, 1, "eof"), ("b", 1500, 1500, 1, "eof")], 0)


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_repeat_within_its_open_session_is_dropped(batch_size: int) -> None:
    records = [_rec("e1", "a", "login", 0), _rec("e2", "a", "login", 500),
               _rec("e1", "a", "login", 900)]
    assert _sessions_of(records, batch_size) == ([("a", 0, 500, 2, "eof")], 1)
