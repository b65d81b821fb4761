"""The shard: watermark across partitions, idleness, timers, and snapshot/restore."""

from __future__ import annotations

import pickle

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion.events import Event
from promotion.routing import ShardBatch, decode_batch, shard_keys
from promotion.shard import SNAPSHOT_VERSION, SessionConfig, SessionShard
from promotion.snapshot import load_state
from promotion.watermark import NO_TIME

GAP = 1_000


def ev(ts: int, user: str = "u", kind: str = "product_view", eid: str | None = None) -> tuple:
    return Event(ts, eid or f"{user}-{ts}-{kind}", user, kind, "test", "p1")


def feed(shard: SessionShard, partition: str, events: list[tuple], now: int = 0):
    highs, high = [], NO_TIME
    for e in events:
        highs.append(high)
        high = max(high, e[0])
    return shard.on_batch(ShardBatch(partition, events, highs, high), now)


def reasons(result) -> list[tuple[str, int, str]]:
    return [(c.user_id, c.start, c.close_reason) for c in result]


def test_session_closes_only_when_watermark_passes_end_plus_gap() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP, lateness_ms=0), ["p"], now_ms=0)
    assert feed(shard, "p", [ev(0), ev(500, "other")]).closed == []
    assert feed(shard, "p", [ev(1_000, "other")]).closed == []  # W = 1000 = end + gap: not past
    assert reasons(feed(shard, "p", [ev(1_001, "other")]).closed) == [("u", 0, "gap")]
    assert "u" not in shard.sessions.users  # nothing open: no state left


def test_logout_closes_as_soon_as_the_watermark_passes_it() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP, lateness_ms=0), ["p"], now_ms=0)
    assert feed(shard, "p", [ev(0, kind="login"), ev(10, kind="logout")]).closed == []
    assert reasons(feed(shard, "p", [ev(11, "other")]).closed) == [("u", 0, "logout")]


def test_slowest_partition_holds_the_watermark() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP, lateness_ms=0), ["a", "b"], now_ms=0)
    feed(shard, "a", [ev(0)])
    feed(shard, "a", [ev(50_000, "x")])
    assert shard.watermark == NO_TIME  # b has not spoken: nothing is safe yet
    result = feed(shard, "b", [ev(200, "y")])
    assert result.late == [] and shard.watermark == 200
    closed = feed(shard, "b", [ev(5_000, "y")]).closed  # W = min(50_000, 5_000)
    assert sorted(reasons(closed)) == [("u", 0, "gap"), ("y", 200, "gap")]


def test_idle_partition_stops_holding_back() -> None:
    config = SessionConfig(gap_ms=GAP, lateness_ms=0, idle_timeout_ms=5_000)
    shard = SessionShard(config, ["a", "b"], now_ms=0)
    feed(shard, "a", [ev(0)], now=1_000)
    assert shard.on_tick(4_999) == []
    assert shard.watermark == NO_TIME
    feed(shard, "a", [ev(9_000, "x")], now=6_000)  # b silent for 6 s > idle timeout
    assert shard.watermark == 9_000
    assert shard.sessions.users == {"x": shard.sessions.users["x"]}


def test_finished_partition_stops_holding_back() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP, lateness_ms=0), ["a", "b"], now_ms=0)
    shard.on_batch(ShardBatch("b", [], [], NO_TIME, final=True), 0)  # b ended without a single valid event
    feed(shard, "a", [ev(0), ev(5_000, "x")])
    assert shard.watermark == 5_000 and "u" not in shard.sessions.users


def test_all_idle_input_advances_by_wall_clock() -> None:
    config = SessionConfig(gap_ms=5_000, lateness_ms=100, idle_timeout_ms=2_000)
    shard = SessionShard(config, ["a"], now_ms=0)
    feed(shard, "a", [ev(0), ev(400)], now=10_000)
    assert shard.watermark == 300
    assert shard.on_tick(11_999) == [] and shard.watermark == 300  # not idle yet
    # Idle: W = 400 - 100 + (now - 10_000), which must pass end + gap = 5_400.
    assert shard.on_tick(12_000) == [] and shard.watermark == 2_300
    assert shard.on_tick(15_100) == [] and shard.watermark == 5_400
    assert reasons(shard.on_tick(15_101)) == [("u", 0, "gap")]


def test_late_event_is_reported_not_merged() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP, lateness_ms=10), ["p"], now_ms=0)
    feed(shard, "p", [ev(1_000)])
    result = feed(shard, "p", [ev(989, "v"), ev(990, "w")])
    assert [x.event[1] for x in result.late] == ["v-989-product_view"]
    assert result.late[0].watermark == 990


def test_state_is_plain_data() -> None:
    shard = SessionShard(SessionConfig(gap_ms=GAP), ["p"], now_ms=0)
    feed(shard, "p", [ev(0, kind="add_to_cart"), ev(1, "v", "logout")])
    blob = shard.snapshot()
    state = orjson.loads(blob)  # plain JSON: no module path can be inside
    assert state["version"] == SNAPSHOT_VERSION and set(state["users"]) == {"u", "v"}
    assert state["users"]["u"]["pending"][0][:3] == [0, "u-0-add_to_cart", "add_to_cart"]
    # Older (pickled) formats: a restricted unpickler refuses every class.
    with pytest.raises(pickle.UnpicklingError):
        load_state(pickle.dumps({"version": 5, "users": Event(1, "e", "u", "login", "s")}))


def test_version_1_snapshots_are_migrated() -> None:
    v1 = {"version": 1, "watermark": 5, "high": {"p": 10}, "users": {"u": [15, [], [tuple(ev(7))]]}}
    shard = SessionShard.restore(SessionConfig(gap_ms=GAP), ["p"], 0, pickle.dumps(v1))
    assert shard.profiles == {} and shard.rules_document is None
    assert reasons(shard.on_eof()) == [("u", 7, "eof")]


def test_profiles_carry_history_and_expire() -> None:
    config = SessionConfig(gap_ms=GAP, lateness_ms=0, profile_ttl_ms=10_000)
    shard = SessionShard(config, ["p"], now_ms=0)
    first = feed(shard, "p", [Event(0, "a", "u", "product_view", "s", "p1", "books"),
                              Event(1, "b", "u", "payment_complete", "s"),
                              ev(5_000, "other")]).closed
    assert [f.profile.sessions for f in first] == [0]  # history before the session
    second = feed(shard, "p", [ev(6_000), ev(8_000, "other")]).closed
    (f,) = [f for f in second if f.user_id == "u"]
    assert (f.profile.sessions, f.profile.purchases_30d, f.profile.top_categories) == (1, 1, {"books"})
    feed(shard, "p", [ev(30_000, "other")])  # watermark passes last session end + TTL
    assert "u" not in shard.profiles and "other" in shard.profiles


def test_unknown_snapshot_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        load_state(pickle.dumps({"version": 99}))


users = st.sampled_from(["a", "b", "c", "d"])
kinds = st.sampled_from(["login", "logout", "product_view", "add_to_cart", "payment_complete"])


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(1, 60))
    out, ts = [], 0
    for i in range(n):
        ts += draw(st.sampled_from([0, 1, 200, 999, 1_000, 1_001, 3_000]))
        jitter = draw(st.integers(-1_500, 0))
        out.append(orjson.dumps({
            "event_id": f"e{i}", "user_id": draw(users), "type": draw(kinds),
            "ts": max(0, ts + jitter), "source": "t", "product_id": "p1"}))
    return out


def run(batches: list[list[bytes]], config: SessionConfig, split: int | None, shards: int = 3):
    keys = shard_keys(shards)
    state = {k: SessionShard(config, ["p"], 0) for k in keys}
    closed, late = [], []
    for i, batch in enumerate(batches):
        if i == split:  # crash and resume from snapshots
            state = {k: SessionShard.restore(config, ["p"], 0, s.snapshot()) for k, s in state.items()}
        for key, work in decode_batch("p", batch, keys).shards:
            r = state[key].on_batch(work, 0)
            closed += r.closed
            late += r.late
    if split == len(batches):
        state = {k: SessionShard.restore(config, ["p"], 0, s.snapshot()) for k, s in state.items()}
    for s in state.values():
        closed += s.on_eof()
    key = [(f.user_id, f.start, f.events, f.close_reason, f.profile.sessions,
            f.profile.purchases_30d, sorted(f.profile.top_categories)) for f in closed]
    return sorted(key), sorted(x.event[1] for x in late)


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(1, 5), st.data(), st.integers(0, 1_200))
def test_snapshot_and_restore_anywhere_changes_nothing(lines, size, data, lateness) -> None:
    batches = [lines[i : i + size] for i in range(0, len(lines), size)]
    split = data.draw(st.integers(0, len(batches)))
    config = SessionConfig(gap_ms=GAP, lateness_ms=lateness)
    assert run(batches, config, split) == run(batches, config, None)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4))
def test_profile_visibility_does_not_depend_on_batching(size: int, shards: int) -> None:
    """A user back after the TTL sees no profile, whichever call closes the session."""
    config = SessionConfig(gap_ms=GAP, lateness_ms=0, profile_ttl_ms=5_000)
    lines = [orjson.dumps({"event_id": f"e{i}", "user_id": user, "type": kind, "ts": ts,
                           "source": "t", "product_id": "p1"})
             for i, (user, kind, ts) in enumerate([
                 ("u", "payment_complete", 0), ("x", "login", 3_000), ("u", "login", 20_000),
                 ("x", "login", 40_000)])]
    batches = [lines[i : i + size] for i in range(0, len(lines), size)]
    keys = shard_keys(shards)
    state = {k: SessionShard(config, ["p"], 0) for k in keys}
    closed = []
    for batch in batches:
        for key, work in decode_batch("p", batch, keys).shards:
            closed += state[key].on_batch(work, 0).closed
    for shard in state.values():
        closed += shard.on_eof()
    second = [f for f in closed if f.user_id == "u" and f.start == 20_000]
    assert [f.profile.sessions for f in second] == [0]


@given(st.randoms(use_true_random=False), st.integers(1, 6))
@settings(max_examples=50)
def test_a_burst_within_the_lateness_matches_sorted_input(rnd, batches: int) -> None:
    """Hundreds of one user's events inside the lateness window (none can settle yet), shuffled
    and with retries, fed in several batches: the sessions of the sorted, deduplicated input."""
    kinds = ["product_view", "add_to_cart", "remove_from_cart", "logout", "payment_complete"]
    events = [ev(ts * 37 % 5_000, kind=rnd.choice(kinds)) for ts in range(300)]
    arrival = events + [rnd.choice(events) for _ in range(40)]  # exact retries
    rnd.shuffle(arrival)
    config = SessionConfig(gap_ms=GAP, lateness_ms=10_000, profile_ttl_ms=0)
    shuffled = SessionShard(config, ["p"], now_ms=0)
    size = -(-len(arrival) // batches)
    closed = []
    for i in range(0, len(arrival), size):
        closed += feed(shuffled, "p", arrival[i : i + size]).closed
    closed += shuffled.on_eof()
    in_order = SessionShard(config, ["p"], now_ms=0)
    expected = feed(in_order, "p", sorted(events)).closed + in_order.on_eof()
    shape = lambda facts: [(f.start, f.end, f.events, f.close_reason, dict(f.cart)) for f in facts]
    assert shape(closed) == shape(expected)
    assert shuffled.take_counts()[1] == 40


def test_a_session_closing_after_its_profile_would_expire_still_sees_it() -> None:
    """Profile expiry runs after the sessions closed in the same step have been recorded: a
    session that started within the TTL sees the profile, even if the watermark has passed the
    profile's expiry by the time the session closes."""
    config = SessionConfig(gap_ms=1_000, lateness_ms=0, profile_ttl_ms=5_000)
    shard = SessionShard(config, ["p"], now_ms=0)
    first = feed(shard, "p", [ev(0, "u", "login"), ev(10, "u", "logout"), ev(20, "y")]).closed
    assert [(f.user_id, f.profile.sessions) for f in first] == [("u", 0)]  # expires at 10 + 5000
    closed = feed(shard, "p", [ev(5_000, "u", "login"), ev(7_000, "x", "login")]).closed
    assert [(f.start, f.profile.sessions) for f in closed if f.user_id == "u"] == [(5_000, 1)]
    assert shard.profiles["u"].last_ts == 5_000  # recorded, then kept: it ends within the TTL
