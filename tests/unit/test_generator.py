"""Tests for promotion.generator (seeded shopping-traffic generator)."""

from __future__ import annotations

import ast
import collections
import dataclasses
import datetime as dt
import itertools
import pathlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion.generator import (
    EVENT_TYPES,
    MAX_LINE_BYTES,
    REJECTION_REASONS,
    GeneratorConfig,
    generate,
    generate_with_truth,
    write_jsonl,
)

SOURCES = {
    "login": "auth",
    "logout": "auth",
    "product_view": "catalog",
    "add_to_cart": "cart",
    "remove_from_cart": "cart",
    "checkout_start": "cart",
    "payment_complete": "payment",
}
PRODUCT_TYPES = {"product_view", "add_to_cart", "remove_from_cart"}
CART_QTY_TYPES = {"add_to_cart", "remove_from_cart"}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
ONE_MS = dt.timedelta(milliseconds=1)

# a config where users have many sessions each
REALISTIC = GeneratorConfig(seed=11, users=40, events=6_000, rate_per_s=0.15)


def ts_ms(value) -> int:
    """Event time of a valid event as epoch ms (int or RFC 3339 with offset)."""
    if isinstance(value, bool):
        raise TypeError("bool ts")
    if isinstance(value, int):
        return value
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return (parsed - EPOCH) // ONE_MS


def classify(line: bytes) -> str:
    """Independent reference validator: "ok" or the rejection reason."""
    if len(line) > MAX_LINE_BYTES:
        return "oversized"
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not_json"
    if not isinstance(obj, dict):
        return "wrong_type"
    required = ["event_id", "user_id", "type", "ts"]
    if obj.get("type") in PRODUCT_TYPES:
        required.append("product_id")
    if any(k not in obj for k in required):
        return "missing_field"
    for key in ("event_id", "user_id", "type", "product_id", "category"):
        if key in obj and not isinstance(obj[key], str):
            return "wrong_type"
    if isinstance(obj["ts"], bool) or not isinstance(obj["ts"], (int, str)):
        return "wrong_type"
    if "quantity" in obj and (isinstance(obj["quantity"], bool)
                              or not isinstance(obj["quantity"], int)):
        return "wrong_type"
    if "price" in obj and (isinstance(obj["price"], bool)
                           or not isinstance(obj["price"], (int, float))):
        return "wrong_type"
    if obj["type"] not in EVENT_TYPES:
        return "unknown_type"
    ts = obj["ts"]
    if isinstance(ts, int):
        if ts < 0:
            return "bad_timestamp"
    else:
        try:
            parsed = dt.datetime.fromisoformat(ts)
        except ValueError:
            return "bad_timestamp"
        if parsed.tzinfo is None:
            return "bad_timestamp"
    if obj["user_id"] == "" or obj.get("quantity", 1) < 1 or obj.get("price", 0) < 0:
        return "invalid_value"
    return "ok"


def valid_events(config: GeneratorConfig) -> list[dict]:
    """Parsed "ok" events in arrival order (each with an extra "_ms")."""
    out = []
    for line, tag in generate_with_truth(config):
        if tag == "ok":
            ev = orjson.loads(line)
            ev["_ms"] = ts_ms(ev["ts"])
            out.append(ev)
    return out


def sessions_by_user(events: list[dict], gap_ms: int) -> dict[str, list[list[dict]]]:
    per_user: dict[str, list[dict]] = collections.defaultdict(list)
    for ev in events:
        per_user[ev["user_id"]].append(ev)
    result = {}
    for user, evs in per_user.items():
        evs.sort(key=lambda e: e["_ms"])
        sessions = [[evs[0]]]
        for prev, cur in zip(evs, evs[1:]):
            if cur["_ms"] - prev["_ms"] > gap_ms:
                sessions.append([])
            sessions[-1].append(cur)
        result[user] = sessions
    return result


# --------------------------------------------------------------------------
# determinism and counts


def test_same_seed_same_bytes_different_seed_different():
    cfg = GeneratorConfig(events=3_000, max_disorder_ms=20_000, duplicate_rate=0.05,
                          bad_rate=0.05)
    a = list(generate(cfg))
    b = list(generate(cfg))
    assert a == b
    c = list(generate(dataclasses.replace(cfg, seed=cfg.seed + 1)))
    assert a != c
    assert [line for line, _ in generate_with_truth(cfg)] == a


def test_defaults_generate_exactly_events_valid_lines():
    lines = list(generate_with_truth(GeneratorConfig()))
    assert len(lines) == 10_000
    assert {tag for _, tag in lines} == {"ok"}
    assert list(generate(GeneratorConfig(events=0))) == []


@pytest.mark.parametrize("events", [1, 2, 17, 1_000])
def test_counts(events):
    cfg = GeneratorConfig(events=events, users=30, duplicate_rate=0.1, bad_rate=0.1,
                          max_disorder_ms=5_000)
    tags = collections.Counter(tag for _, tag in generate_with_truth(cfg))
    assert tags["ok"] == events
    if events >= 1_000:
        assert 70 <= tags["duplicate"] <= 130
        assert 70 <= sum(tags[r] for r in REJECTION_REASONS) <= 130
    assert set(tags) <= {"ok", "duplicate", *REJECTION_REASONS}


def test_event_ids_unique_and_duplicates_are_exact_copies_after_original():
    cfg = GeneratorConfig(events=4_000, users=200, duplicate_rate=0.2,
                          max_disorder_ms=30_000, bad_rate=0.05)
    seen_ok: dict[bytes, int] = {}
    ids = set()
    dups = 0
    for i, (line, tag) in enumerate(generate_with_truth(cfg)):
        if tag == "ok":
            ev = orjson.loads(line)
            assert ev["event_id"] not in ids
            ids.add(ev["event_id"])
            seen_ok[line] = i
        elif tag == "duplicate":
            dups += 1
            assert line in seen_ok, "duplicate emitted before (or without) its original"
    assert dups > 500
    assert len(ids) == 4_000


def test_duplicates_without_disorder_follow_the_original_closely():
    cfg = GeneratorConfig(events=2_000, users=100, duplicate_rate=0.1)
    out = list(generate_with_truth(cfg))
    for i, (line, tag) in enumerate(out):
        if tag == "duplicate":
            assert line in {l for l, t in out[max(0, i - 50):i] if t == "ok"}


def test_write_jsonl(tmp_path):
    cfg = GeneratorConfig(events=500, users=20, bad_rate=0.2, duplicate_rate=0.1, seed=3)
    path = tmp_path / "events.jsonl"
    n = write_jsonl(path, cfg)
    data = path.read_bytes()
    expected = list(generate(cfg))
    assert n == len(expected)
    assert data == b"".join(line + b"\n" for line in expected)
    assert write_jsonl(tmp_path / "empty.jsonl", GeneratorConfig(events=0)) == 0
    assert (tmp_path / "empty.jsonl").read_bytes() == b""


# --------------------------------------------------------------------------
# bounded disorder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    max_disorder_ms=st.one_of(st.just(0), st.integers(min_value=1, max_value=200_000)),
    users=st.integers(min_value=1, max_value=80),
    events=st.integers(min_value=0, max_value=400),
    rate_per_s=st.sampled_from([0.05, 1.0, 50.0, 1_000.0]),
    duplicate_rate=st.sampled_from([0.0, 0.1, 0.5]),
    bad_rate=st.sampled_from([0.0, 0.2]),
    ts_format=st.sampled_from(["epoch_ms", "rfc3339", "mixed"]),
)
def test_disorder_bound(seed, max_disorder_ms, users, events, rate_per_s, duplicate_rate,
                        bad_rate, ts_format):
    cfg = GeneratorConfig(seed=seed, users=users, events=events, rate_per_s=rate_per_s,
                          max_disorder_ms=max_disorder_ms, duplicate_rate=duplicate_rate,
                          bad_rate=bad_rate, ts_format=ts_format)
    high = None
    ok = 0
    for line, tag in generate_with_truth(cfg):
        if tag not in ("ok", "duplicate"):
            continue
        ok += tag == "ok"
        ts = ts_ms(orjson.loads(line)["ts"])
        assert ts >= cfg.start_ms
        if high is not None:
            assert ts >= high - max_disorder_ms
        high = ts if high is None else max(high, ts)
    assert ok == events


def test_disorder_actually_reorders_and_zero_disorder_is_sorted():
    base = dict(events=3_000, users=300, rate_per_s=20.0)
    ordered = [e["_ms"] for e in valid_events(GeneratorConfig(**base))]
    assert ordered == sorted(ordered)
    shuffled = [e["_ms"] for e in valid_events(GeneratorConfig(**base, max_disorder_ms=10_000))]
    assert shuffled != sorted(shuffled)
    assert sorted(shuffled) == sorted(ordered)
    lateness = max(high - ts for high, ts in zip(itertools.accumulate(shuffled, max), shuffled))
    assert 5_000 < lateness <= 10_000


def test_noise_settings_do_not_change_the_valid_events():
    base = dict(seed=5, events=2_000, users=100, rate_per_s=5.0)
    ref = sorted(l for l, t in generate_with_truth(GeneratorConfig(**base)) if t == "ok")
    noisy = GeneratorConfig(**base, max_disorder_ms=60_000, duplicate_rate=0.3, bad_rate=0.3)
    assert sorted(l for l, t in generate_with_truth(noisy) if t == "ok") == ref

    def normalised(fmt):
        evs = valid_events(GeneratorConfig(**base, ts_format=fmt))
        return [{k: v for k, v in e.items() if k != "ts"} for e in evs]

    assert normalised("epoch_ms") == normalised("rfc3339") == normalised("mixed")


# --------------------------------------------------------------------------
# schema


def test_valid_lines_have_the_schema():
    cfg = GeneratorConfig(events=5_000, users=300, duplicate_rate=0.05, bad_rate=0.05,
                          max_disorder_ms=10_000)
    catalog: dict[str, tuple] = {}
    types = collections.Counter()
    omitted_quantity = 0
    for line, tag in generate_with_truth(cfg):
        assert b"\n" not in line and b"\r" not in line
        if tag not in ("ok", "duplicate"):
            continue
        line.decode("utf-8")
        ev = orjson.loads(line)
        assert classify(line) == "ok"
        types[ev["type"]] += 1
        assert isinstance(ev["event_id"], str) and ev["event_id"]
        assert isinstance(ev["user_id"], str) and ev["user_id"].startswith("u")
        assert 0 <= int(ev["user_id"][1:]) < cfg.users
        assert ev["type"] in EVENT_TYPES
        assert ev["source"] == SOURCES[ev["type"]]
        assert ts_ms(ev["ts"]) >= cfg.start_ms
        if ev["type"] in PRODUCT_TYPES:
            pid = ev["product_id"]
            assert isinstance(pid, str) and pid.startswith("p")
            assert 0 <= int(pid[1:]) < cfg.products
            assert isinstance(ev["category"], str) and ev["category"]
            price = ev["price"]
            assert isinstance(price, float) and price > 0 and round(price, 2) == price
            assert catalog.setdefault(pid, (ev["category"], price)) == (ev["category"], price)
        else:
            assert not {"product_id", "category", "price", "quantity"} & ev.keys()
        if ev["type"] in CART_QTY_TYPES:
            if "quantity" in ev:
                assert isinstance(ev["quantity"], int) and ev["quantity"] >= 1
            else:
                omitted_quantity += 1
        else:
            assert "quantity" not in ev
    assert set(types) == set(EVENT_TYPES)
    assert omitted_quantity > 0
    assert len({c for c, _ in catalog.values()}) >= 5


def test_catalog_is_deterministic_per_product_across_seeds():
    def catalog(seed):
        out = {}
        for ev in valid_events(GeneratorConfig(seed=seed, events=3_000, products=50)):
            if "product_id" in ev:
                out[ev["product_id"]] = (ev["category"], ev["price"])
        return out

    a, b = catalog(1), catalog(2)
    common = a.keys() & b.keys()
    assert len(common) > 20
    assert all(a[p] == b[p] for p in common)


def test_ts_formats():
    def kinds(fmt):
        c = collections.Counter()
        for ev in valid_events(GeneratorConfig(events=2_000, ts_format=fmt)):
            ts = ev["ts"]
            if isinstance(ts, int):
                c["int"] += 1
            elif ts.endswith("Z"):
                c["Z"] += 1
            elif ts.endswith("+00:00"):
                c["+00:00"] += 1
            else:
                c["offset"] += 1
                assert dt.datetime.fromisoformat(ts).utcoffset() != dt.timedelta(0)
        return c

    assert set(kinds("epoch_ms")) == {"int"}
    assert set(kinds("rfc3339")) == {"Z", "+00:00", "offset"}
    mixed = kinds("mixed")
    assert set(mixed) == {"int", "Z", "+00:00", "offset"}
    assert 0.35 < mixed["int"] / sum(mixed.values()) < 0.65


# --------------------------------------------------------------------------
# realism


def test_sessions_are_realistic():
    cfg = REALISTIC
    events = valid_events(cfg)
    by_user = sessions_by_user(events, cfg.gap_ms)
    gaps = []
    for evs in (sum(s, []) for s in by_user.values()):
        gaps += [b["_ms"] - a["_ms"] for a, b in zip(evs, evs[1:])]
    within = [g for g in gaps if g <= cfg.gap_ms]
    between = [g for g in gaps if g > cfg.gap_ms]
    assert len(within) > 0.75 * len(gaps)
    assert len(between) > 200
    # a clear separation: within-session <= 2 min, between sessions >= 1.5 gap
    assert all(0 < g <= 120_000 for g in within)
    assert all(g >= 1.5 * cfg.gap_ms for g in between)
    assert max(between) > 5 * cfg.gap_ms
    # users come back for several sessions
    assert sum(len(s) >= 5 for s in by_user.values()) > len(by_user) // 2

    outcomes = collections.Counter()
    for sessions in by_user.values():
        for session in sessions[1:]:  # the first one may have started before start_ms
            types = [e["type"] for e in session]
            cart = collections.Counter()
            for e in session:
                if e["type"] == "add_to_cart":
                    cart[e["product_id"]] += e.get("quantity", 1)
                elif e["type"] == "remove_from_cart":
                    assert cart[e["product_id"]] >= e.get("quantity", 1)
                    cart[e["product_id"]] -= e.get("quantity", 1)
            if "logout" in types:
                assert types.index("logout") == len(types) - 1
            if "login" in types:
                assert types.index("login") == 0
            if "payment_complete" in types:
                assert "checkout_start" in types[: types.index("payment_complete")]
                outcomes["paid"] += 1
            elif +cart:
                outcomes["abandoned"] += 1
                if "checkout_start" not in types:
                    assert types[-1] != "logout"
            else:
                outcomes["browse"] += 1
    total = sum(outcomes.values())
    for kind in ("paid", "abandoned", "browse"):
        assert outcomes[kind] > 0.1 * total, outcomes


def test_interleaved_users():
    events = valid_events(GeneratorConfig(events=2_000, users=500, rate_per_s=10.0))
    switches = sum(a["user_id"] != b["user_id"] for a, b in zip(events, events[1:]))
    assert switches > 0.9 * len(events)
    assert len({e["user_id"] for e in events}) > 200


def test_rate_is_honoured_when_the_user_pool_allows_it():
    cfg = GeneratorConfig(events=20_000, users=50_000, rate_per_s=100.0)
    ts = [e["_ms"] for e in valid_events(cfg)]
    span_s = (max(ts) - min(ts)) / 1000
    assert 0.9 * 200 < span_s < 1.1 * 200
    assert min(ts) - cfg.start_ms < 1_000


def test_rate_is_capped_by_realism_when_users_are_too_few():
    cfg = GeneratorConfig(events=5_000, users=100, rate_per_s=1_000.0)
    events = valid_events(cfg)
    span_s = (max(e["_ms"] for e in events) - min(e["_ms"] for e in events)) / 1000
    assert span_s > 10 * cfg.events / cfg.rate_per_s
    assert {e["user_id"] for e in events} <= {f"u{i:06d}" for i in range(100)}
    for sessions in sessions_by_user(events, cfg.gap_ms).values():
        evs = sum(sessions, [])
        for a, b in zip(evs, evs[1:]):
            g = b["_ms"] - a["_ms"]
            assert g <= 120_000 or g >= 1.5 * cfg.gap_ms


def test_small_gap_shapes_traffic():
    cfg = GeneratorConfig(events=3_000, users=20, gap_ms=10_000, rate_per_s=0.5)
    events = valid_events(cfg)
    by_user = sessions_by_user(events, cfg.gap_ms)
    for sessions in by_user.values():
        evs = sum(sessions, [])
        for a, b in zip(evs, evs[1:]):
            g = b["_ms"] - a["_ms"]
            assert g <= 0.4 * cfg.gap_ms or g >= 1.5 * cfg.gap_ms
    assert sum(len(s) for s in by_user.values()) > 100


# --------------------------------------------------------------------------
# bad records


def test_bad_records_cover_every_reason_and_match_a_reference_validator():
    cfg = GeneratorConfig(events=6_000, users=200, bad_rate=0.5, duplicate_rate=0.05,
                          max_disorder_ms=5_000, seed=9)
    tags = collections.Counter()
    for line, tag in generate_with_truth(cfg):
        tags[tag] += 1
        assert b"\n" not in line and b"\r" not in line and line.strip()
        assert classify(line) == ("ok" if tag == "duplicate" else tag), (tag, line[:200])
        if tag == "oversized":
            assert len(line) > MAX_LINE_BYTES
        else:
            assert len(line) <= MAX_LINE_BYTES
    assert set(REJECTION_REASONS) <= set(tags)
    bad = sum(tags[r] for r in REJECTION_REASONS)
    assert 2_600 < bad < 3_400
    assert tags["oversized"] * 50 <= bad


def test_truth_tags_match_the_project_decoder():
    decoding = pytest.importorskip("promotion.decoding")
    cfg = GeneratorConfig(events=6_000, users=200, bad_rate=0.5, duplicate_rate=0.05,
                          max_disorder_ms=5_000, seed=21)
    seen = set()
    for line, tag in generate_with_truth(cfg):
        result = decoding.decode_event(line)
        got = result.reason if isinstance(result, decoding.Rejection) else "ok"
        assert got == ("ok" if tag == "duplicate" else tag), (tag, result, line[:200])
        seen.add(tag)
    assert set(REJECTION_REASONS) <= seen


def test_not_json_includes_invalid_utf8_and_truncation():
    cfg = GeneratorConfig(events=3_000, users=50, bad_rate=0.5, seed=2)
    not_json = [l for l, t in generate_with_truth(cfg) if t == "not_json"]
    invalid_utf8 = truncated = 0
    for line in not_json:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            invalid_utf8 += 1
        if line.startswith(b'{"event_id"'):
            truncated += 1
    assert invalid_utf8 > 0 and truncated > 0


def test_bad_records_do_not_disturb_valid_stream():
    base = dict(events=1_500, users=60, max_disorder_ms=2_000, duplicate_rate=0.1)
    clean = [(l, t) for l, t in generate_with_truth(GeneratorConfig(**base))]
    dirty = [(l, t) for l, t in generate_with_truth(GeneratorConfig(**base, bad_rate=0.3))
             if t in ("ok", "duplicate")]
    assert clean == dirty


# --------------------------------------------------------------------------
# config and purity


@pytest.mark.parametrize("field,value", [
    ("users", 0), ("events", -1), ("rate_per_s", 0.0), ("gap_ms", 0),
    ("max_disorder_ms", -1), ("duplicate_rate", 1.5), ("bad_rate", -0.1),
    ("ts_format", "iso"), ("products", 0), ("start_ms", -5),
])
def test_invalid_config_rejected(field, value):
    with pytest.raises(ValueError):
        generate(GeneratorConfig(**{field: value}))


def test_module_is_pure():
    import promotion.generator as mod

    tree = ast.parse(pathlib.Path(mod.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "datetime", "math", "random", "dataclasses", "heapq",
                        "operator", "typing", "orjson"}
    source = pathlib.Path(mod.__file__).read_text()
    for forbidden in (".now(", ".today(", "utcnow", "time.time", "os.environ", "getenv"):
        assert forbidden not in source


@pytest.mark.parametrize("gap_ms", [10, 1_000])
def test_tiny_gap_still_strictly_increasing_per_user(gap_ms):
    cfg = GeneratorConfig(events=2_000, users=10, gap_ms=gap_ms, rate_per_s=1.0)
    for sessions in sessions_by_user(valid_events(cfg), gap_ms).values():
        evs = sum(sessions, [])
        for a, b in zip(evs, evs[1:]):
            g = b["_ms"] - a["_ms"]
            assert 0 < g and (g <= max(1, 0.4 * gap_ms) or g >= 1.5 * gap_ms)
