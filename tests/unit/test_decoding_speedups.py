"""The decoder's fast paths give exactly what the strict reference paths give, for any input.

`decode_many` accepts plainly valid records itself and hands everything else to `decode_strict`
(the strict decoder); `parse_rfc3339_ms` answers from caches and defers to `_parse_strict`;
`format_ms` caches per-second prefixes. Each is compared here with its reference, field by field
and type by type, including the rejection reason, detail and field.
"""

from __future__ import annotations

import zlib

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from promotion import timefmt
from promotion.decoding import Rejection, decode_strict, decode_event, decode_many
from promotion.events import EVENT_TYPES, Event
from promotion.routing import decode_batch, shard_keys
from promotion.timefmt import BadTimestamp, format_ms, parse_rfc3339_ms
from promotion.watermark import NO_TIME


def _typed(value: object) -> object:
    """Equality that also tells 3 from 3.0 and True from 1."""
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


def _expected(raw: bytes, max_bytes: int = 65_536) -> object:
    slow = decode_strict(raw, max_bytes)
    return slow


def _assert_same(raw: bytes, max_bytes: int = 65_536) -> None:
    expected = _expected(raw, max_bytes)
    got = decode_event(raw, max_bytes)
    assert type(got) is type(expected), (raw, got, expected)
    assert _typed(got) == _typed(expected), (raw, got, expected)


# -- timestamps -----------------------------------------------------------------------------------

digits = st.sampled_from("0123456789")
odd_digits = st.sampled_from("0123456789٢１")  # \d also matches non-ASCII digits


def _num(width: int, alphabet: st.SearchStrategy[str] = digits) -> st.SearchStrategy[str]:
    return st.lists(alphabet, min_size=width, max_size=width).map("".join)


def _mostly(valid: st.SearchStrategy, wild: st.SearchStrategy) -> st.SearchStrategy:
    """Valid values most of the time, so that both paths are exercised."""
    return st.integers(0, 9).flatmap(lambda n: wild if n == 0 else valid)


def _field(lo: int, hi: int, width: int = 2) -> st.SearchStrategy[str]:
    return _mostly(
        st.integers(lo, hi).map(lambda n: f"{n:0{width}d}"),
        st.one_of(st.integers(0, 10**width - 1).map(lambda n: f"{n:0{width}d}"), _num(width, odd_digits)),
    )


rfc3339_like = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}",
    _mostly(st.integers(1970, 2100).map(str), _field(0, 9999, 4)),
    _field(1, 12),
    _field(1, 28),
    _mostly(st.sampled_from("Tt "), st.sampled_from("x_")),
    _field(0, 23),
    _field(0, 59),
    _field(0, 59),
    st.one_of(st.just(""), st.integers(0, 11).flatmap(lambda n: _num(n).map(lambda x: "." + x))),
    _mostly(
        st.one_of(
            st.sampled_from(["Z", "z", "+00:00", "-00:00", "+02:00", "-05:30"]),
            st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), _field(0, 23), _field(0, 59)),
        ),
        st.sampled_from(["", "Z ", "+0200", "+24:00", "-00:60", "+1:00", "Zz"]),
    ),
)


def _strict(text: str) -> tuple[str, object]:
    try:
        return ("ok", timefmt._parse_strict(text))
    except BadTimestamp as error:
        return ("error", str(error))


def _fast(text: str) -> tuple[str, object]:
    try:
        return ("ok", parse_rfc3339_ms(text))
    except BadTimestamp as error:
        return ("error", str(error))


@given(st.one_of(rfc3339_like, st.text(max_size=40)))
@example("2026-01-01T00:00:00Z")
@example("1970-01-01T00:00:00+00:01")  # before 1970 in UTC
@example("9999-12-31T23:59:59.999-00:01")  # after 9999 in UTC
@example("0000-01-01T00:00:00Z")
@example("2024-02-29T23:59:60Z")
@example("٢٠٢٦-01-01T00:00:00Z")
@example("2026-01-01T00:00:00.123456789+23:59")
def test_parse_matches_strict_parser_cold_and_cached(text: str) -> None:
    expected = _strict(text)
    assert _fast(text) == expected  # first sight: fills the caches when valid
    assert _fast(text) == expected  # cached


@given(st.lists(rfc3339_like, min_size=2, max_size=8))
def test_cached_parts_combine_correctly(texts: list[str]) -> None:
    """Prefixes and tails cached from different strings recombine to the strict result."""
    for text in texts:
        _fast(text)
    for a in texts:
        for b in texts:
            mixed = a[:19] + b[19:]
            assert _fast(mixed) == _strict(mixed)


def test_parse_caches_stay_bounded() -> None:
    base = 1_767_225_600_000
    for second in range(timefmt._CACHE_LIMIT + 10):
        ms = base + second * 1000 + second % 1000
        assert parse_rfc3339_ms(format_ms(ms)) == ms
    assert len(timefmt._prefix_ms) <= timefmt._CACHE_LIMIT
    assert len(timefmt._tail_ms) <= timefmt._CACHE_LIMIT
    assert len(timefmt._formatted) <= timefmt._CACHE_LIMIT


@given(st.one_of(st.integers(0, timefmt.MAX_MS), st.integers(-(10**12), 10**12)))
@example(0)
@example(timefmt.MAX_MS)
@example(-1)
def test_format_matches_strict_formatter(ms: int) -> None:
    assert format_ms(ms) == timefmt._format_strict(ms)
    assert format_ms(ms) == timefmt._format_strict(ms)


# -- records --------------------------------------------------------------------------------------

ids = st.one_of(
    st.sampled_from(["e1", "u1", "p1", "cart", "x" * 256, "x" * 257, "", "é", "\x00"]),
    st.text(max_size=5),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=1),
)
timestamps = st.one_of(
    st.integers(-2, 2),
    st.sampled_from([timefmt.MAX_MS, timefmt.MAX_MS + 1, 1_767_225_600_000, 2**63 - 1, 2**64 - 1]),
    st.integers(0, timefmt.MAX_MS),
    rfc3339_like,
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=1),
)
numbers = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from([1_000_000, 1_000_001, 2**63 - 1, -(2**63), 2**64 - 1, -0.0, 0.0, 1e308, -1e-300]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=1), st.integers(-5, 5), max_size=1),
)
kinds = st.one_of(st.sampled_from(EVENT_TYPES), st.sampled_from(["teleport", "", "LOGIN"]), ids)


valid_ids = st.one_of(st.sampled_from(["e1", "u1", "p1", "x" * 256, "é"]), st.text(min_size=1, max_size=4))
valid_numbers = st.one_of(st.none(), st.integers(1, 1_000_000), st.floats(0, 1e6))


@st.composite
def records(draw: st.DrawFn) -> dict:
    record: dict[str, object] = {
        "event_id": draw(_mostly(valid_ids, ids)),
        "user_id": draw(_mostly(valid_ids, ids)),
        "type": draw(_mostly(st.sampled_from(EVENT_TYPES), kinds)),
        "ts": draw(_mostly(st.one_of(st.integers(0, timefmt.MAX_MS), rfc3339_like), timestamps)),
        "source": draw(_mostly(valid_ids, ids)),
        "product_id": draw(_mostly(valid_ids, ids)),
        "category": draw(_mostly(valid_ids, ids)),
        "price": draw(_mostly(valid_numbers, numbers)),
        "quantity": draw(_mostly(st.one_of(st.none(), st.integers(1, 1_000_000)), numbers)),
        "extra": draw(st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3))),
    }
    drop = draw(st.sets(st.sampled_from(sorted(record)), max_size=2))
    if draw(st.integers(0, 3)):
        drop = {k for k in drop if k in ("product_id", "category", "price", "quantity", "extra")}
    return {k: v for k, v in record.items() if k not in drop}


@settings(max_examples=800)
@given(records())
def test_any_record_decodes_like_the_strict_decoder(record: dict) -> None:
    _assert_same(orjson.dumps(record))


@given(st.one_of(st.binary(max_size=200), st.text(max_size=60).map(str.encode)))
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":' + b"9" * 40 + b"}")
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1e400}')
@example(b"[1]")
@example(b"null")
@example(b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":1,"x":"\xff"}')
@example(b'{"event_id":"e","event_id":1,"user_id":"u","type":"login","source":"a","ts":1}')
def test_any_bytes_decode_like_the_strict_decoder(raw: bytes) -> None:
    _assert_same(raw)


@given(records(), st.integers(0, 400))
def test_size_limit_like_the_strict_decoder(record: dict, limit: int) -> None:
    _assert_same(orjson.dumps(record), limit)


# -- batches --------------------------------------------------------------------------------------


def _reference_batch(partition: str, values: list[bytes], keys: list[str], final: bool) -> tuple:
    """The batch split as specified: per record decode_event, shard by crc32, highs before."""
    per_shard: list[list[tuple]] = [[] for _ in keys]
    highs: list[list[int]] = [[] for _ in keys]
    rejected, counts, high = [], {}, NO_TIME
    for index, raw in enumerate(values):
        decoded = decode_event(raw)
        if isinstance(decoded, Rejection):
            rejected.append((index, raw, decoded))
            continue
        shard = zlib.crc32(decoded.user_id.encode("utf-8")) % len(keys)
        per_shard[shard].append(tuple(decoded))
        highs[shard].append(high)
        counts[decoded.type] = counts.get(decoded.type, 0) + 1
        high = max(high, decoded.ts)
    work = [(key, (partition, per_shard[i], highs[i], high, final)) for i, key in enumerate(keys)]
    return work, rejected, len(values) - len(rejected), counts


@given(
    st.lists(st.one_of(records().map(orjson.dumps), st.binary(max_size=20)), max_size=30),
    st.integers(1, 7),
    st.booleans(),
)
def test_decode_batch_matches_per_record_reference(values: list[bytes], shards: int, final: bool) -> None:
    keys = shard_keys(shards)
    got = decode_batch("part", values, keys, final=final)
    work, rejected, valid, counts = _reference_batch("part", values, keys, final)
    assert [(k, tuple(w)) for k, w in got.shards] == work
    assert [w.events for _, w in got.shards] == [w[1] for _, w in work]
    for _, shard_batch in got.shards:
        assert all(type(e) is Event for e in shard_batch.events)
    assert [tuple(r) for r in got.rejected] == rejected
    assert got.valid == valid
    assert got.type_counts == counts
    assert list(got.type_counts) == list(counts)


def test_decode_many_returns_events_and_indexed_rejections() -> None:
    good = orjson.dumps({"event_id": "e", "user_id": "u", "type": "login", "ts": 5, "source": "a"})
    events, rejected = decode_many([b"nope", good, b"[]"])
    assert events == [(5, "e", "u", "login", "a", None, None, None, 1)]
    assert type(events[0]) is Event
    assert [(i, r.reason) for i, r in rejected] == [(0, "not_json"), (2, "wrong_type")]


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_event_types_are_shared_constants(kind: str) -> None:
    raw = orjson.dumps({"event_id": "e", "user_id": "u", "type": kind, "ts": 5, "source": "a",
                        "product_id": "p"})
    event = decode_event(raw)
    assert isinstance(event, Event) and event.type is kind  # one string per type in held state
