"""Output records: notifications, dead letters (rejected input) and late events.

Each is an `OutRecord` (key, value, headers) so the same stream can go to a Kafka topic (key and
headers used) or to a JSON-lines file (value only).
"""

from __future__ import annotations

import base64
import hashlib
from typing import NamedTuple

import orjson

from promotion.decoding import OVERSIZED
from promotion.events import EVENT_ID, USER_ID, event_to_dict
from promotion.routing import RejectedRecord
from promotion.shard import LateEvent
from promotion.timefmt import format_ms


class OutRecord(NamedTuple):
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def notification_record(notification: dict) -> OutRecord:
    """Keyed by user, the deterministic id also in a header for consumers that dedupe."""
    return OutRecord(
        notification["user_id"].encode("utf-8"),
        orjson.dumps(notification),
        [("notification_id", notification["notification_id"].encode("ascii"))],
    )


#: An oversized record is dead-lettered as its first bytes only (with its size and digest): a
#: 50 MB line must not become a 50 MB reject, and the prefix is enough to find and judge it.
KEPT_BYTES = 1024


def _kept(record: RejectedRecord) -> tuple[bytes, dict[str, object]]:
    """The bytes a dead letter carries and, when cut, what identifies the whole record."""
    raw = record.raw
    if record.rejection[0] != OVERSIZED or len(raw) <= KEPT_BYTES:
        return raw, {}
    end = KEPT_BYTES
    while end > KEPT_BYTES - 4 and raw[end] & 0xC0 == 0x80:  # not inside a UTF-8 character
        end -= 1
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    return raw[:end], {"size": len(raw), "blake2b": digest, "truncated": True}


def _dead_letter_headers(partition: str, offset: int, record: RejectedRecord) -> list[tuple[str, bytes]]:
    reason, detail, field = record.rejection
    topic, _, number = partition.rpartition("/")
    headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.detail", detail.encode("utf-8", "replace")),
        ("dlq.source.partition", partition.encode("utf-8")),
        ("dlq.source.offset", str(offset).encode()),
    ]
    if topic and number.isdigit():
        headers += [("dlq.source.topic", topic.encode("utf-8")), ("dlq.source.kafka_partition", number.encode())]
    if field:
        headers.append(("dlq.field", field.encode()))
    return headers


def dead_letter_raw(partition: str, offset: int, record: RejectedRecord) -> OutRecord:
    """For a dead-letter topic: the original bytes untouched, the reason and origin in headers.
    An oversized record: its first KEPT_BYTES, with headers dlq.size and dlq.blake2b."""
    raw, cut = _kept(record)
    headers = _dead_letter_headers(partition, offset, record)
    if cut:
        headers += [("dlq.size", str(cut["size"]).encode()), ("dlq.blake2b", str(cut["blake2b"]).encode())]
    return OutRecord(None, raw, headers)


def dead_letter_line(partition: str, offset: int, record: RejectedRecord) -> OutRecord:
    """For a file: one JSON line carrying the reason, the origin and the record itself (an
    oversized one: its first KEPT_BYTES, plus `size`, `blake2b` and `truncated`)."""
    reason, detail, field = record.rejection
    out: dict[str, object] = {
        "kind": "rejected",
        "reason": reason,
        "detail": detail,
        "field": field,
        "partition": partition,
        "offset": offset,
    }
    raw, cut = _kept(record)
    try:
        out["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        out["raw_base64"] = base64.b64encode(raw).decode("ascii")
    out.update(cut)
    return OutRecord(None, orjson.dumps(out), _dead_letter_headers(partition, offset, record))


def late_record(late: LateEvent) -> OutRecord:
    """A late event: the normalised event and how far behind the watermark it was."""
    value = orjson.dumps(
        {
            "kind": "late",
            "reason": "late",
            "event": event_to_dict(late.event),
            "watermark": format_ms(late.watermark),
            "behind_ms": late.watermark - late.event[0],
            "partition": late.partition,
        }
    )
    ident = f"{late.partition}/{late.event[EVENT_ID]}".encode("utf-8", "replace")
    return OutRecord(late.event[USER_ID].encode("utf-8"), value, [("reason", b"late"), ("late.id", ident)])


#: The header that carries each kind of record's id. A dead letter's id is its origin, the
#: input partition and offset; a late event's, its input partition and `event_id`.
_ID_HEADERS = ("notification_id", "late.id")


def record_id(headers: list[tuple[str, bytes | None]]) -> bytes | None:
    """The deterministic id of an output record, from its headers: the same input replayed gives
    the same id, which is how a resumed Kafka sink recognises what it already wrote. None for a
    record without one (written by something else)."""
    found = {name: value for name, value in headers if value is not None}
    for name in _ID_HEADERS:
        if name in found:
            return found[name]
    partition, offset = found.get("dlq.source.partition"), found.get("dlq.source.offset")
    if partition is None or offset is None:
        return None
    return partition + b"@" + offset
