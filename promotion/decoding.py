"""Strict, total decoding: any bytes give either an `Event` or a `Rejection`; nothing raises."""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import orjson

from promotion.events import EVENT_TYPES, PRODUCT_TYPES, Event
from promotion.timefmt import MAX_MS, BadTimestamp, parse_rfc3339_ms

# Machine-readable rejection reasons.
NOT_JSON: Final = "not_json"
MISSING_FIELD: Final = "missing_field"
WRONG_TYPE: Final = "wrong_type"
UNKNOWN_TYPE: Final = "unknown_type"
BAD_TIMESTAMP: Final = "bad_timestamp"
OVERSIZED: Final = "oversized"
INVALID_VALUE: Final = "invalid_value"
REJECTION_REASONS: Final = (
    NOT_JSON,
    MISSING_FIELD,
    WRONG_TYPE,
    UNKNOWN_TYPE,
    BAD_TIMESTAMP,
    OVERSIZED,
    INVALID_VALUE,
)

DEFAULT_MAX_EVENT_BYTES: Final = 65_536
#: Identifiers longer than this are refused: they would bloat session state and notifications.
MAX_ID_LENGTH: Final = 256
_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)


class Rejection(NamedTuple):
    """Why a record is not a valid event; `field` names the offending field, if any."""

    reason: str
    detail: str
    field: str | None = None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail, field)


def decode_event(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Event | Rejection:
    """Decode one JSON record into an `Event`, or say precisely why not."""
    if len(raw) > max_bytes:
        return Rejection(OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return Rejection(NOT_JSON, str(error)[:200])
    if not isinstance(obj, dict):
        return Rejection(WRONG_TYPE, f"expected a JSON object, got {_json_type(obj)}", "$")
    try:
        return _validate(obj)
    except _Reject as reject:
        return reject.rejection
    except Exception as error:  # noqa: BLE001 - decoding is total by contract
        return Rejection(INVALID_VALUE, f"unexpected: {type(error).__name__}: {error}"[:200])


def _validate(obj: dict) -> Event:
    event_id = _required_id(obj, "event_id")
    user_id = _required_id(obj, "user_id")
    kind = obj.get("type")
    if kind is None:
        raise _Reject(MISSING_FIELD, "missing 'type'", "type")
    if not isinstance(kind, str):
        raise _Reject(WRONG_TYPE, f"'type' must be a string, got {_json_type(kind)}", "type")
    if kind not in _KNOWN_TYPES:
        raise _Reject(UNKNOWN_TYPE, f"unknown event type {kind[:64]!r}", "type")
    ts = _timestamp(obj.get("ts"))
    source = _required_id(obj, "source")
    product_id = _optional_id(obj, "product_id")
    if product_id is None and kind in PRODUCT_TYPES:
        raise _Reject(MISSING_FIELD, f"'product_id' is required for {kind}", "product_id")
    category = _optional_id(obj, "category")
    price = _price(obj.get("price"))
    quantity = _quantity(obj.get("quantity"))
    return Event(ts, event_id, user_id, kind, source, product_id, category, price, quantity)


def _required_id(obj: dict, name: str) -> str:
    value = _optional_id(obj, name)
    if value is None:
        raise _Reject(MISSING_FIELD, f"missing {name!r}", name)
    return value


def _optional_id(obj: dict, name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject(WRONG_TYPE, f"{name!r} must be a string, got {_json_type(value)}", name)
    if not value or len(value) > MAX_ID_LENGTH:
        raise _Reject(INVALID_VALUE, f"{name!r} must have 1..{MAX_ID_LENGTH} characters", name)
    return value


def _timestamp(value: object) -> int:
    if value is None:
        raise _Reject(MISSING_FIELD, "missing 'ts'", "ts")
    if isinstance(value, bool):
        raise _Reject(WRONG_TYPE, "'ts' must be a string or an integer, got boolean", "ts")
    if isinstance(value, int):
        if not 0 <= value <= MAX_MS:
            raise _Reject(BAD_TIMESTAMP, f"epoch milliseconds out of range: {value}", "ts")
        return value
    if isinstance(value, str):
        try:
            return parse_rfc3339_ms(value)
        except BadTimestamp as error:
            raise _Reject(BAD_TIMESTAMP, f"{error}: {value[:64]!r}", "ts") from None
    raise _Reject(WRONG_TYPE, f"'ts' must be a string or an integer, got {_json_type(value)}", "ts")


def _price(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject(WRONG_TYPE, f"'price' must be a number, got {_json_type(value)}", "price")
    if not math.isfinite(value) or value < 0:
        raise _Reject(INVALID_VALUE, f"'price' must be finite and >= 0: {value}", "price")
    return float(value)


def _quantity(value: object) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Reject(
            WRONG_TYPE, f"'quantity' must be an integer, got {_json_type(value)}", "quantity"
        )
    if not 1 <= value <= 1_000_000:
        raise _Reject(INVALID_VALUE, f"'quantity' must be in 1..1000000: {value}", "quantity")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
