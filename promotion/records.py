"""JSON records for the side outputs: rejected input (dead letters) and late events."""

from __future__ import annotations

import base64

import orjson

from promotion.events import event_to_dict
from promotion.routing import RejectedRecord
from promotion.shard import LateEvent
from promotion.timefmt import format_ms


def encode_rejected(partition: str, offset: int, record: RejectedRecord) -> bytes:
    """A dead-letter line: the reason, where the record came from, and the record itself."""
    reason, detail, field = record.rejection
    out: dict[str, object] = {
        "kind": "rejected",
        "reason": reason,
        "detail": detail,
        "field": field,
        "partition": partition,
        "offset": offset,
    }
    try:
        out["raw"] = record.raw.decode("utf-8")
    except UnicodeDecodeError:
        out["raw_base64"] = base64.b64encode(record.raw).decode("ascii")
    return orjson.dumps(out)


def encode_late(late: LateEvent) -> bytes:
    """A late-event line: the normalised event and how far behind the watermark it was."""
    return orjson.dumps(
        {
            "kind": "late",
            "reason": "late",
            "event": event_to_dict(late.event),
            "watermark": format_ms(late.watermark),
            "behind_ms": late.watermark - late.event[0],
            "partition": late.partition,
        }
    )
