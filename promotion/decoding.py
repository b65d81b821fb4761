"""Strict, total decoding: any bytes give either an `Event` or a `Rejection`; nothing raises.

Two paths with one meaning. `decode_many` (the hot path, used per batch) accepts plainly valid
records with msgspec, which parses and type-checks a record against a schema in C (about a third
of the time of orjson plus the same checks in Python), and builds plain event tuples; any record
it does not accept goes to the strict decoder (orjson + `_validate`), which alone decides
rejections (reason, detail, field). The fast path is checked against the strict one for arbitrary
inputs in tests/unit/test_decoding_speedups.py.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Annotated, Final, Literal, NamedTuple, Union

import msgspec
import orjson

from promotion.events import EVENT_TYPES, PRODUCT_TYPES, Event
from promotion.timefmt import MAX_MS, BadTimestamp, format_ms, parse_rfc3339_ms

# Machine-readable rejection reasons.
NOT_JSON: Final = "not_json"
MISSING_FIELD: Final = "missing_field"
WRONG_TYPE: Final = "wrong_type"
UNKNOWN_TYPE: Final = "unknown_type"
BAD_TIMESTAMP: Final = "bad_timestamp"
OVERSIZED: Final = "oversized"
INVALID_VALUE: Final = "invalid_value"
FUTURE_TIMESTAMP: Final = "future_timestamp"
REJECTION_REASONS: Final = (
    NOT_JSON,
    MISSING_FIELD,
    WRONG_TYPE,
    UNKNOWN_TYPE,
    BAD_TIMESTAMP,
    OVERSIZED,
    INVALID_VALUE,
    FUTURE_TIMESTAMP,
)

DEFAULT_MAX_EVENT_BYTES: Final = 65_536
#: Identifiers longer than this are refused: they would bloat session state and notifications.
MAX_ID_LENGTH: Final = 256
_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)
#: Known type -> the constant itself, so held events share one string per type.
_CANONICAL_TYPE: Final[dict[str, str]] = {kind: kind for kind in EVENT_TYPES}
_MAX_FLOAT: Final = sys.float_info.max
_parse_ts: Final = parse_rfc3339_ms
_new_tuple: Final = tuple.__new__
#: Strings of low-cardinality fields (source, product_id, category), so that the events and
#: sessions held in state share one copy of each (sys.intern would do, but its strings are
#: immortal on Python 3.12). Cleared when it grows past the limit.
_SHARED: Final[dict[str, str]] = {}
_SHARED_LIMIT: Final = 50_000


class Rejection(NamedTuple):
    """Why a record is not a valid event; `field` names the offending field, if any."""

    reason: str
    detail: str
    field: str | None = None


class FutureLimit(NamedTuple):
    """How far ahead of the wall clock an event's ts may be (`PROMO_MAX_FUTURE_SECONDS`).

    The caller reads the clock (`now_ms`, once per batch): this module never does. One event
    from a clock-skewed producer would otherwise carry its partition's event time years ahead
    and make every later event late.
    """

    now_ms: int
    max_ahead_ms: int

    @property
    def latest_ms(self) -> int:
        """The newest ts accepted."""
        return self.now_ms + self.max_ahead_ms

    def rejection(self, ts: int) -> Rejection:
        return Rejection(
            FUTURE_TIMESTAMP,
            f"ts {format_ms(ts)} is more than {_seconds(self.max_ahead_ms)} s ahead of the wall "
            f"clock ({format_ms(self.now_ms)})",
            "ts",
        )


def _seconds(ms: int) -> str:
    whole, rest = divmod(ms, 1000)
    return str(whole) if not rest else f"{whole}.{rest:03d}".rstrip("0")


class _Reject(Exception):
    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail, field)


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class _PlainRecord(msgspec.Struct, gc=False):
    """The shape of a plainly valid record (unknown fields ignored), for the fast path only."""

    event_id: _Id
    user_id: _Id
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    ts: Union[Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)], str]
    source: _Id
    product_id: Union[_Id, None] = None
    category: Union[_Id, None] = None
    price: Union[Annotated[float, msgspec.Meta(ge=0.0, le=_MAX_FLOAT)], None] = None
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1


_decode_plain: Final = msgspec.json.Decoder(_PlainRecord).decode


def decode_event(
    raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES, future: FutureLimit | None = None
) -> Event | Rejection:
    """Decode one JSON record into an `Event`, or say precisely why not."""
    events, rejected = decode_many((raw,), max_bytes, future)
    if events:
        return events[0]
    return rejected[0][1]


def decode_many(
    values: Iterable[bytes], max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    future: FutureLimit | None = None,
) -> tuple[list[Event], list[tuple[int, Rejection]]]:
    """Decode records in bulk: (valid events as plain tuples, [(index, rejection)]).

    Results are exactly those of `decode_event`, record by record.

    The fast path below accepts only plainly valid records (`_PlainRecord`: strict types, so no
    booleans for numbers, bounds as in `_validate`). Any record it does not vouch for goes to
    `decode_strict`, which decides every rejection: reason, detail and field.
    """
    events: list[Event] = []
    rejected: list[tuple[int, Rejection]] = []
    append = events.append
    decode = _decode_plain
    canonical_type = _CANONICAL_TYPE
    product_types = PRODUCT_TYPES
    parse_ts = _parse_ts
    share = _SHARED.setdefault
    latest = MAX_MS if future is None else min(MAX_MS, future.latest_ms)
    for index, raw in enumerate(values):
        # msgspec does not check the UTF-8 of fields it skips: such records are the slow path's.
        if len(raw) <= max_bytes and (raw.isascii() or _is_utf8(raw)):
            try:
                record = decode(raw)
                ts = record.ts
                if ts.__class__ is str:
                    ts = parse_ts(ts)  # cached per second; BadTimestamp -> the slow path
                    if not 0 <= ts <= MAX_MS:
                        raise ValueError(ts)
                if ts > latest:
                    raise ValueError(ts)  # ahead of the wall clock: the slow path words it
                kind = canonical_type[record.type]
                product_id = record.product_id
                category = record.category
                if product_id is not None:
                    product_id = share(product_id, product_id)
                elif kind in product_types:
                    raise ValueError(kind)
                if category is not None:
                    category = share(category, category)
                # One string per source, product and category among held events.
                source = share(record.source, record.source)
                append(_new_tuple(Event, (ts, record.event_id, record.user_id, kind, source,
                                          product_id, category, record.price, record.quantity)))
                continue
            except Exception:  # noqa: BLE001 - not plainly valid: the slow path decides
                pass
        decoded = decode_strict(raw, max_bytes, future)
        if type(decoded) is Event:
            append(decoded)
        else:
            rejected.append((index, decoded))  # type: ignore[arg-type]
    if len(_SHARED) > _SHARED_LIMIT:
        _SHARED.clear()  # bounded: sharing is best effort
    return events, rejected


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_strict(
    raw: bytes, max_bytes: int, future: FutureLimit | None = None
) -> Event | Rejection:
    """The reference decoder: an event tuple, or the rejection with its reason and detail.

    A record that is valid but for a ts beyond `future.latest_ms` is `future_timestamp`.
    """
    if len(raw) > max_bytes:
        return Rejection(OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return Rejection(NOT_JSON, str(error)[:200])
    if not isinstance(obj, dict):
        return Rejection(WRONG_TYPE, f"expected a JSON object, got {_json_type(obj)}", "$")
    try:
        event = _validate(obj)
    except _Reject as reject:
        return reject.rejection
    except Exception as error:  # noqa: BLE001 - decoding is total by contract
        return Rejection(INVALID_VALUE, f"unexpected: {type(error).__name__}: {error}"[:200])
    if future is not None and event.ts > future.latest_ms:
        return future.rejection(event.ts)
    return event


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
    if _is_huge_integer(value):
        raise _Reject(BAD_TIMESTAMP, "epoch milliseconds out of range: beyond 64 bits", "ts")
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
    if _is_huge_integer(value):
        raise _Reject(INVALID_VALUE, "'quantity' must be in 1..1000000: beyond 64 bits", "quantity")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Reject(
            WRONG_TYPE, f"'quantity' must be an integer, got {_json_type(value)}", "quantity"
        )
    if not 1 <= value <= 1_000_000:
        raise _Reject(INVALID_VALUE, f"'quantity' must be in 1..1000000: {value}", "quantity")
    return value


def _is_huge_integer(value: object) -> bool:
    """orjson reads an integer beyond 64 bits as a float: such a value is out of range, not of
    the wrong type."""
    return isinstance(value, float) and value.is_integer() and abs(value) >= 2**63


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
