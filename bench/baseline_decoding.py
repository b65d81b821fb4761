"""The decode path as it was before the speed-ups (frozen copy), for before/after figures.

Same results as `promotion.decoding` / `promotion.routing`; only slower. Used by the benchmark to
measure both versions in the same run; not imported by the service.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Final

import orjson

from promotion.decoding import (
    BAD_TIMESTAMP,
    DEFAULT_MAX_EVENT_BYTES,
    INVALID_VALUE,
    MAX_ID_LENGTH,
    MISSING_FIELD,
    NOT_JSON,
    OVERSIZED,
    UNKNOWN_TYPE,
    WRONG_TYPE,
    Rejection,
)
from promotion.events import EVENT_TYPES, PRODUCT_TYPES, Event
from promotion.routing import DecodedBatch, RejectedRecord, ShardBatch
from promotion.timefmt import MAX_MS, BadTimestamp
from promotion.watermark import NO_TIME

EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS: Final = timedelta(milliseconds=1)
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp that carries an offset into epoch milliseconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadTimestamp("not an RFC 3339 timestamp with offset")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise BadTimestamp("offset out of range")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError as error:
        raise BadTimestamp(str(error)) from None
    ms = (moment - EPOCH) // ONE_MS
    if not 0 <= ms <= MAX_MS:
        raise BadTimestamp("timestamp before 1970 or after 9999")
    return ms


_KNOWN_TYPES: Final = frozenset(EVENT_TYPES)


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


def decode_batch(
    partition: str,
    values: Sequence[bytes],
    keys: Sequence[str],
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    final: bool = False,
) -> DecodedBatch:
    """Decode a partition batch and split it by shard, keeping partition order."""
    n_shards = len(keys)
    per_shard: list[list[tuple]] = [[] for _ in range(n_shards)]
    highs: list[list[int]] = [[] for _ in range(n_shards)]
    rejected: list[RejectedRecord] = []
    type_counts: dict[str, int] = {}
    high = NO_TIME
    crc32 = zlib.crc32
    for index, raw in enumerate(values):
        decoded = decode_event(raw, max_event_bytes)
        if not isinstance(decoded, Event):
            rejected.append(RejectedRecord(index, raw, decoded))
            continue
        shard = crc32(decoded.user_id.encode("utf-8")) % n_shards
        per_shard[shard].append(tuple(decoded))
        highs[shard].append(high)
        type_counts[decoded.type] = type_counts.get(decoded.type, 0) + 1
        if decoded.ts > high:
            high = decoded.ts
    work = [
        (key, ShardBatch(partition, per_shard[i], highs[i], high, final))
        for i, key in enumerate(keys)
    ]
    return DecodedBatch(work, rejected, len(values) - len(rejected), type_counts)
