"""Decoding is strict and total: every input gives an Event or a Rejection with a reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from promotion.decoding import REJECTION_REASONS, Rejection, decode_event
from promotion.events import Event

BASE = {"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "ts": 1_767_225_600_000,
        "source": "cart", "product_id": "p1"}


def _with(**changes: object) -> bytes:
    record = {**BASE, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def test_valid_event_normalises_fields() -> None:
    event = decode_event(_with(price=3, category="books"))
    assert event == Event(1_767_225_600_000, "e1", "u1", "add_to_cart", "cart", "p1", "books", 3.0, 1)


@pytest.mark.parametrize(
    "ts, expected",
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000),
        ("2025-12-31T19:00:00.250-05:00", 1_767_225_600_250),
        ("2026-01-01t00:00:00.123456789z", 1_767_225_600_123),
        ("2026-01-01 00:00:00.5+00:00", 1_767_225_600_500),
        ("2026-01-01T00:00:00.1239999999999Z", 1_767_225_600_123),  # RFC 3339 sets no digit limit
        ("2016-12-31T23:59:60Z", 1_483_228_799_999),  # a leap second: the last ms before it
        ("2017-01-01T00:59:60.5+01:00", 1_483_228_799_999),
        (1_767_225_600_001, 1_767_225_600_001),
        (0, 0),
    ],
)
def test_timestamps_in_both_forms(ts: object, expected: int) -> None:
    event = decode_event(_with(ts=ts))
    assert isinstance(event, Event) and event.ts == expected


@pytest.mark.parametrize(
    "raw, reason, field",
    [
        (b"{not json", "not_json", None),
        (b"\xff\xfe\x00", "not_json", None),
        (b"", "not_json", None),
        (b"[1, 2]", "wrong_type", "$"),
        (b'"a string"', "wrong_type", "$"),
        (_with(user_id=...), "missing_field", "user_id"),
        (_with(event_id=None), "missing_field", "event_id"),
        (_with(type=...), "missing_field", "type"),
        (_with(ts=...), "missing_field", "ts"),
        (_with(source=...), "missing_field", "source"),
        (_with(product_id=...), "missing_field", "product_id"),
        (_with(user_id=42), "wrong_type", "user_id"),
        (_with(type=7), "wrong_type", "type"),
        (_with(ts=True), "wrong_type", "ts"),
        (_with(ts=1.5), "wrong_type", "ts"),
        (_with(ts=[1]), "wrong_type", "ts"),
        (_with(quantity="2"), "wrong_type", "quantity"),
        (_with(quantity=True), "wrong_type", "quantity"),
        (_with(price="9.99"), "wrong_type", "price"),
        (_with(category=1), "wrong_type", "category"),
        (_with(type="teleport"), "unknown_type", "type"),
        (_with(ts="yesterday"), "bad_timestamp", "ts"),
        (_with(ts="2026-01-01T10:00:00"), "bad_timestamp", "ts"),
        (_with(ts="2026-02-30T10:00:00Z"), "bad_timestamp", "ts"),
        (_with(ts="2026-01-01T10:00:00+25:00"), "bad_timestamp", "ts"),
        (_with(ts=-1), "bad_timestamp", "ts"),
        (_with(ts=10**15), "bad_timestamp", "ts"),
        (_with(ts="２０２６-01-01T00:00:00Z"), "bad_timestamp", "ts"),  # full-width digits
        (_with(ts="2026-01-01T00:00:00.00\u0662Z"), "bad_timestamp", "ts"),  # Arabic-Indic digit
        (_with(ts="2026-01-01T10:15:60Z"), "bad_timestamp", "ts"),  # 60 only at 23:59 UTC
        (_with(ts="2016-12-31T23:59:60+01:00"), "bad_timestamp", "ts"),  # 22:59:60 UTC
        (_with(ts="2026-01-01T10:00:00.Z"), "bad_timestamp", "ts"),
        (b"   ", "not_json", None),
        (b"\x0b", "not_json", None),
        (_with(user_id=""), "invalid_value", "user_id"),
        (_with(user_id="u" * 257), "invalid_value", "user_id"),
        (_with(quantity=0), "invalid_value", "quantity"),
        # orjson reads integers beyond 64 bits as floats: out of range, not of the wrong type
        (_with(quantity=7).replace(b":7", b":" + b"9" * 23), "invalid_value", "quantity"),
        (_with(ts=7).replace(b":7", b":" + b"9" * 23), "bad_timestamp", "ts"),
        (_with(price=-1), "invalid_value", "price"),
    ],
)
def test_every_rejection_reason(raw: bytes, reason: str, field: str | None) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection), result
    assert (result.reason, result.field) == (reason, field)
    assert result.detail


def test_oversized_is_checked_before_parsing() -> None:
    raw = _with(padding="x" * 70_000)
    assert decode_event(raw).reason == "oversized"
    assert isinstance(decode_event(raw, max_bytes=100_000), Event)


def test_product_is_optional_for_other_types() -> None:
    assert isinstance(decode_event(_with(type="payment_complete", product_id=...)), Event)


def test_extra_fields_are_tolerated() -> None:
    assert isinstance(decode_event(_with(session_hint="x", nested={"a": 1})), Event)


def test_quantity_defaults_to_one() -> None:
    assert decode_event(_with(quantity=None)).quantity == 1


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_reject(raw: bytes) -> None:
    result = decode_event(raw)
    assert isinstance(result, Event) or result.reason in REJECTION_REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(sorted(BASE) + ["quantity", "price", "category"]), json_values))
def test_any_json_object_decodes_or_rejects(obj: dict) -> None:
    result = decode_event(orjson.dumps(obj))
    assert isinstance(result, Event) or result.reason in REJECTION_REASONS


def test_huge_integers_in_input_are_rejected_not_raised() -> None:
    raw = b'{"event_id":"e","user_id":"u","type":"login","source":"a","ts":' + b"9" * 40 + b"}"
    assert isinstance(decode_event(raw), Rejection)
