"""The compiled kernel against the Python specification, byte for byte.

Both engines run the same scripts (arbitrary disordered streams with repeats, logouts, bridging
events, malformed records, both timestamp forms, several partitions of which some stay idle,
arbitrary batch splits, wall-clock ticks, snapshot/restore at arbitrary points, into either
engine); every step's encoded notifications, late records and dead letters must be equal.
"""

from __future__ import annotations

import pickle

import orjson
import promotions_kernel
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dataflows import kernel_engine
from promotion.decoding import FutureLimit
from promotion.events import Event
from promotion.records import dead_letter_line, late_record
from promotion.routing import decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules, parse_rules
from promotion.core import ShardCore
from promotion.shard import SessionConfig
from promotion.timefmt import format_ms
from tests.unit.test_decoding_speedups import _typed, records

RULES = load_rules(DEFAULT_RULES_PATH)
#: Rules that look at everything a session has, profiles included, so any difference shows.
CURIOUS = parse_rules({"version": "diff-1", "rules": [
    {"name": "paid", "when": {"fact": "payments", "op": ">=", "value": 1},
     "action": "STOP_PROMOTION"},
    {"name": "returning", "when": {"all": [{"fact": "profile_sessions", "op": ">=", "value": 1},
                                           {"fact": "cart_value", "op": ">", "value": 0}]},
     "action": "START_PROMOTION", "promote": "cart"},
    {"name": "viewer", "when": {"fact": "viewed_products", "op": "contains", "value": "p1"},
     "action": "START_PROMOTION", "promote": "viewed"},
    {"name": "any-cart", "when": {"fact": "cart_items", "op": ">", "value": 0},
     "action": "START_PROMOTION"},
]})
ENGINES = {"python": (ShardCore, decode_batch),
           "kernel": (kernel_engine.KernelCore, kernel_engine.decode_batch)}
RULE_SETS = {"default": RULES, "curious": CURIOUS}


# -- decoding -----------------------------------------------------------------------------------


def _both(values: list[bytes], shards: int = 3, max_bytes: int = 65_536):
    keys = shard_keys(shards)
    return (decode_batch("p", values, keys, max_bytes, False),
            kernel_engine.decode_batch("p", values, keys, max_bytes, False))


def _assert_same_decoding(values: list[bytes], shards: int = 3, max_bytes: int = 65_536) -> None:
    spec, kernel = _both(values, shards, max_bytes)
    assert [tuple(r) for r in kernel.rejected] == [tuple(r) for r in spec.rejected]
    assert (kernel.valid, kernel.type_counts) == (spec.valid, spec.type_counts)
    for (key_a, a), (key_b, b) in zip(spec.shards, kernel.shards, strict=True):
        assert key_a == key_b
        assert [_typed(tuple(e)) for e in b.events()] == [_typed(tuple(e)) for e in a.events]
        assert b.highs_before == a.highs_before
        assert (b.partition, b.batch_high, b.final) == (a.partition, a.batch_high, a.final)


@settings(max_examples=1_500)
@given(records())
def test_any_record_decodes_as_the_specification_decodes_it(record: dict) -> None:
    _assert_same_decoding([orjson.dumps(record)])


@given(st.one_of(st.binary(max_size=200), st.text(max_size=60).map(str.encode)))
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"price":-0}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"price":-0.0}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"price":9007199254740993}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"price":1e400}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"x":"\xff"}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"x":"\\ud800"}')
@example(b'\xef\xbb\xbf{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":"2024-12-31T23:59:60Z"}')
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1}\n')
@example(b"")
def test_any_bytes_decode_as_the_specification_decodes_them(raw: bytes) -> None:
    _assert_same_decoding([raw])


@given(st.lists(st.one_of(records().map(orjson.dumps), st.binary(max_size=30)), max_size=40),
       st.integers(1, 5), st.integers(256, 400))
def test_batches_split_as_the_specification_splits_them(values, shards, max_bytes) -> None:
    _assert_same_decoding(values, shards, max_bytes)


def test_work_pickles_for_other_workers() -> None:
    line = orjson.dumps({"event_id": "e", "user_id": "u", "type": "add_to_cart", "ts": 5,
                         "source": "s", "product_id": "p", "price": 1.25, "quantity": 2})
    (_key, work), = kernel_engine.decode_batch("p", [line], ["k"], 65_536, True).shards
    copy = pickle.loads(pickle.dumps(work))
    assert isinstance(copy, promotions_kernel.Work)
    assert (copy.events(), copy.highs_before, copy.batch_high, copy.final) == (
        work.events(), work.highs_before, work.batch_high, work.final)


# -- sessions, rules and records ------------------------------------------------------------------

USERS = ["a", "b", "c", "dé"]
KINDS = ["login", "logout", "product_view", "add_to_cart", "remove_from_cart", "checkout_start",
         "payment_complete"]
BAD = [b"", b"{", b"[]", b'{"event_id":"x"}', b'{"event_id":"e","user_id":"u","type":"nap",'
       b'"ts":1,"source":"s"}', b"\xff\xfe", b'{"event_id":"e","user_id":"u","type":"login",'
       b'"ts":"2026-02-30T00:00:00Z","source":"s"}']


@st.composite
def scripts(draw: st.DrawFn) -> tuple[list[tuple], SessionConfig]:
    """Steps: ("batch", partition, lines, now_ms, final), ("tick", now_ms), ("restore", engine),
    ("rules", name): a live rules change."""
    config = SessionConfig(
        gap_ms=draw(st.sampled_from([1_000, 3_000])),
        lateness_ms=draw(st.sampled_from([0, 500, 2_000])),
        idle_timeout_ms=draw(st.sampled_from([5_000, 60_000])),
        profile_ttl_ms=draw(st.sampled_from([0, 4_000, 30 * 86_400_000])),
    )
    partitions = draw(st.sampled_from([["p"], ["p", "q"], ["p", "q", "idle"]]))
    n = draw(st.integers(1, 70))
    events, ts = [], 0
    for i in range(n):
        ts += draw(st.sampled_from([0, 1, 300, 999, 1_000, 1_001, 2_500, 4_000]))
        jitter = draw(st.sampled_from([0, 0, 0, -200, -1_200, -5_000]))
        kind = draw(st.sampled_from(KINDS))
        record: dict[str, object] = {
            "event_id": f"e{draw(st.integers(0, i))}" if draw(st.integers(0, 9)) == 0 else f"e{i}",
            "user_id": draw(st.sampled_from(USERS)), "type": kind, "source": "t",
            "ts": max(0, ts + jitter),
        }
        if kind in ("product_view", "add_to_cart", "remove_from_cart") or draw(st.booleans()):
            record["product_id"] = draw(st.sampled_from(["p1", "p2", "p3"]))
        if draw(st.booleans()):
            record["category"] = draw(st.sampled_from(["books", "toys"]))
        if kind == "add_to_cart":
            record["price"] = draw(st.sampled_from([None, 0.1, 0.2, 19.99, 3, 1e16]))
            record["quantity"] = draw(st.integers(1, 3))
        if kind == "remove_from_cart":
            record["quantity"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            record["ts"] = format_ms(record["ts"]).replace("Z", draw(st.sampled_from(["Z", "z"])))
        line = orjson.dumps(record)
        if events and draw(st.integers(0, 14)) == 0:
            line = draw(st.sampled_from(events))  # an exact retry, maybe behind the watermark
        events.append(draw(st.sampled_from(BAD)) if draw(st.integers(0, 19)) == 0 else line)
    steps: list[tuple] = []
    now = 0
    i = 0
    active = [p for p in partitions if p != "idle"]
    while i < len(events):
        size = draw(st.integers(1, 12))
        now += draw(st.sampled_from([0, 10, 1_000, 6_000]))
        partition = draw(st.sampled_from(active))
        chunk = events[i : i + size]
        i += size
        final = i >= len(events) and draw(st.booleans())
        steps.append(("batch", partition, chunk, now, final))
        choice = draw(st.integers(0, 9))
        if choice == 0:
            now += draw(st.sampled_from([1_000, 70_000]))
            steps.append(("tick", now))
        elif choice == 1:
            steps.append(("restore", draw(st.sampled_from(sorted(ENGINES)))))
        elif choice == 2:
            steps.append(("rules", draw(st.sampled_from(sorted(RULE_SETS)))))
    future_ms = draw(st.sampled_from([0, 0, 2_000, 30_000]))  # the future-timestamp guard
    return steps, config, partitions, future_ms


def _step(key: str, step, rejects: list[bytes] | None = None) -> tuple:
    records = [(r.key, r.value, r.headers) for r in step.notifications]
    late = [late_record(x).value for x in step.late]
    return (key, records, step.decisions, [tuple(c) for c in step.closed], late, rejects or [])


def play(engine: str, steps: list[tuple], config: SessionConfig, partitions: list[str],
         shards: int = 2, rules: str = "curious", future_ms: int = 0) -> list[tuple]:
    """Run a script; return every step's output: records as bytes, decisions, closed sessions."""
    factory, split = ENGINES[engine]
    keys = shard_keys(shards)
    state = {k: factory(config, partitions, 0, None) for k in keys}
    for core in state.values():
        core.use_rules(RULE_SETS[rules])
    out: list[tuple] = []
    offsets = {p: 0 for p in partitions}
    for step in steps:
        if step[0] == "batch":
            _, partition, lines, now, final = step
            future = FutureLimit(now, future_ms) if future_ms else None
            decoded = split(partition, lines, keys, 65_536, final, future)
            rejects = [dead_letter_line(partition, offsets[partition] + r.index, r).value
                       for r in decoded.rejected]
            offsets[partition] += len(lines)
            for key, work in decoded.shards:
                out.append(_step(key, state[key].on_batch([work], now), rejects))
                rejects = []
        elif step[0] == "tick":
            out += [_step(key, core.on_tick(step[1])) for key, core in state.items()]
        elif step[0] == "rules":
            rules = step[1]
            for core in state.values():
                core.use_rules(RULE_SETS[rules])
        else:  # a resume, possibly with the other engine (which decodes for itself, too)
            factory, split = ENGINES[step[1]]
            state = {k: factory(config, partitions, 0, c.snapshot()) for k, c in state.items()}
            for core in state.values():
                core.use_rules(RULE_SETS[rules])
    for key, core in state.items():
        out.append((*_step(key, core.on_eof()), core.take_counts(), core.open_users))
    return out


@settings(max_examples=400, deadline=None)
@given(scripts(), st.integers(1, 3))
def test_kernel_outputs_equal_the_specification(script, shards: int) -> None:
    steps, config, partitions, future_ms = script
    assert play("kernel", steps, config, partitions, shards, future_ms=future_ms) == play(
        "python", steps, config, partitions, shards, future_ms=future_ms)


def test_the_scripts_exercise_what_they_claim() -> None:
    """Guard against a vacuous comparison: the engines produce sessions, late events, rejects."""
    lines = [orjson.dumps({"event_id": f"e{i}", "user_id": USERS[i % 4], "type": KINDS[i % 7],
                           "ts": 5_000 + i * 700 - (3_000 if i % 9 == 0 else 0), "source": "t",
                           "product_id": "p1", "price": 2.5}) for i in range(60)] + BAD
    steps = [("batch", "p", lines[i : i + 7], i, False) for i in range(0, len(lines), 7)]
    for rules in RULE_SETS:
        out = play("kernel", steps, SessionConfig(gap_ms=1_000), ["p"], rules=rules)
        assert out == play("python", steps, SessionConfig(gap_ms=1_000), ["p"], rules=rules)
        assert sum(len(o[1]) for o in out) > 5  # notifications
        assert sum(len(o[4]) for o in out) > 0  # late
        assert sum(len(o[5]) for o in out) == len(BAD)  # dead letters


def test_kernel_snapshot_is_format_7_json_and_resumes_in_python() -> None:
    config = SessionConfig(gap_ms=1_000)
    line = orjson.dumps({"event_id": "e1", "user_id": "u", "type": "add_to_cart", "ts": 10,
                         "source": "s", "product_id": "p", "price": 0.1, "quantity": 2})
    core = kernel_engine.KernelCore(config, ["p"], 0, None)
    core.use_rules(RULES)
    (_key, work), = kernel_engine.decode_batch("p", [line], ["k"], 65_536).shards
    core.on_batch([work], 0)
    state = orjson.loads(core.snapshot())
    assert state["version"] == 7 and state["rules"]["version"] == RULES.version
    assert state["users"]["u"]["pending"] == [[10, "e1", "add_to_cart", "s", "p", None, 0.1, 2]]
    resumed = ShardCore(config, ["p"], 0, core.snapshot())
    resumed.use_rules(RULES)
    (record,) = resumed.on_eof().notifications
    assert orjson.loads(record.value)["products"] == ["p"]
    again = kernel_engine.KernelCore(config, ["p"], 0, resumed.snapshot())
    again.use_rules(RULES)
    assert again.open_users == 0 and orjson.loads(again.snapshot())["profiles"]["u"]["sessions"] == 1


def test_user_ids_are_compared_and_escaped_as_python_does() -> None:
    """Emission order sorts by user id (UTF-8 bytes in Rust, code points in Python); ids with
    control characters and quotes are escaped as orjson escapes them."""
    users = ["z", "é", "\U0001f600", "ａ", "A", 'q"\\\x01\n']
    lines = [orjson.dumps({"event_id": f"e{i}", "user_id": u, "type": "add_to_cart", "ts": 5,
                           "source": "s", "product_id": "p"}) for i, u in enumerate(users)]
    steps = [("batch", "p", lines, 0, False)]
    out = play("kernel", steps, SessionConfig(gap_ms=1_000), ["p"], 1, "default")
    assert out == play("python", steps, SessionConfig(gap_ms=1_000), ["p"], 1, "default")
    assert [orjson.loads(r[1])["user_id"] for r in out[-1][1]] == sorted(users)
def test_events_roundtrip_through_the_kernel_unchanged() -> None:
    event = Event(5, "e", "u", "add_to_cart", "s", "p", None, 2.5, 3)
    decoded = promotions_kernel.decode([b"x"], 65_536)
    decoded.accept(0, event)
    (work,) = decoded.split("p", 1, False)
    assert work.events() == [tuple(event)]


def test_retries_behind_the_watermark_and_future_timestamps_are_exercised() -> None:
    """Guard for the new cases: exact retries behind the watermark while open are duplicates in
    both engines, and a ts beyond the future limit is dead-lettered alike."""
    lines = [orjson.dumps({"event_id": f"e{i}", "user_id": USERS[i % 2], "type": "product_view",
                           "ts": 1_000 + i * 300, "source": "t", "product_id": "p1"})
             for i in range(20)]
    lines += [lines[15], lines[17], orjson.dumps({"event_id": "f", "user_id": "a", "ts": 10**9,
                                                  "type": "login", "source": "t"})]
    steps = [("batch", "p", lines[i : i + 5], 1_000 + i * 300, False)
             for i in range(0, len(lines), 5)]
    out = play("kernel", steps, SessionConfig(gap_ms=1_000), ["p"], future_ms=60_000)
    assert out == play("python", steps, SessionConfig(gap_ms=1_000), ["p"], future_ms=60_000)
    assert sum(c[-2][1] for c in out if len(c) == 8) == 2  # both retries dropped as repeats
    assert sum(len(o[4]) for o in out) == 0  # none of them late
    (reject,) = [r for o in out for r in o[5]]
    assert orjson.loads(reject)["reason"] == "future_timestamp"
