"""The compiled kernel (`promotions_kernel`, built from kernel/) as decoder and sessions engine.

The kernel decodes the plainly valid records of a batch and keeps a shard's sessions; this module
turns what it returns into the domain's types, so that everything after a session closes
(profiles, facts, rules, notifications) is the same code for both engines. Records the kernel does
not vouch for are decoded by `promotion.decoding.decode_strict`, which alone words rejections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from promotion.decoding import decode_strict
from promotion.events import Event
from promotion.routing import DecodedBatch, RejectedRecord
from promotion.sessions import ClosedSession, LateEvent, Session

try:
    import promotions_kernel as _kernel
except ImportError:  # not built: PROMO_ENGINE=kernel then fails at start with MISSING
    _kernel = None

MISSING = ("PROMO_ENGINE=kernel: the compiled kernel (promotions_kernel) is not installed; "
           "build it with `make kernel` (needs cargo), or set PROMO_ENGINE=python")


def available() -> bool:
    return _kernel is not None


def decode_batch(
    partition: str, values: Sequence[bytes], keys: Sequence[str], max_event_bytes: int,
    final: bool = False,
) -> DecodedBatch:
    """`promotion.routing.decode_batch`, with the kernel decoding and splitting."""
    values = values if type(values) is list else list(values)
    decoded = _kernel.decode(values, max_event_bytes)
    rejected = []
    for index in decoded.unvouched:
        result = decode_strict(values[index], max_event_bytes)
        if type(result) is Event:
            decoded.accept(index, result)
        else:
            rejected.append(RejectedRecord(index, values[index], result))
    valid, counts = decoded.valid, decoded.type_counts()
    work = decoded.split(partition, len(keys), final)
    return DecodedBatch(list(zip(keys, work)), rejected, valid, counts)


def _closed(item: tuple) -> ClosedSession:
    user_id, reason, start, first_id, end, events, logged_out, counts, cart, prices, viewed, cats = item
    session = Session(start, first_id, end, events, logged_out, counts, cart, prices, viewed, cats)
    return ClosedSession(user_id, session, reason)


class KernelEngine:
    """A shard's sessions kept by the kernel (`promotion.shard.SessionEngine`)."""

    def __init__(
        self, gap_ms: int, lateness_ms: int, idle_timeout_ms: int, partitions: list[str],
        now_ms: int,
    ) -> None:
        self._shard = _kernel.Shard(gap_ms, lateness_ms, idle_timeout_ms, partitions, now_ms)

    @property
    def watermark_value(self) -> int:
        return self._shard.watermark_value

    @property
    def open_users(self) -> int:
        return self._shard.open_users

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and user_id in self._shard

    def on_batch(self, work: Any, now_ms: int) -> tuple[list[ClosedSession], list[LateEvent]]:
        closed, late = self._shard.on_batch(work, now_ms)
        return ([_closed(c) for c in closed],
                [LateEvent(Event._make(event), mark, part) for event, mark, part in late])

    def on_tick(self, now_ms: int) -> list[ClosedSession]:
        return [_closed(c) for c in self._shard.on_tick(now_ms)]

    def on_eof(self) -> list[ClosedSession]:
        return [_closed(c) for c in self._shard.on_eof()]

    def take_counts(self) -> tuple[int, int]:
        return self._shard.take_counts()

    def state_json(self) -> bytes:
        return self._shard.state_json()

    def load(self, state: dict[str, Any], now_ms: int) -> None:
        part = {"watermark": state["watermark"], "high": state["high"], "users": state["users"]}
        self._shard.load_json(orjson.dumps(part), now_ms)
