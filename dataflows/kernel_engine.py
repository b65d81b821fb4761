"""The compiled kernel (`promotions_kernel`, built from kernel/) as decoder and shard core.

The kernel decodes the plainly valid records of a batch, keeps a shard's sessions and profiles,
applies the rules and encodes notifications; this module adapts it to the interface of
`promotion.core.ShardCore`, the Python specification it must match byte for byte. Records the
kernel does not vouch for are decoded by `promotion.decoding.decode_strict`, which alone words
rejections; rules are validated in Python and handed over as their plain document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from promotion.core import ClosedStats, StepOutput
from promotion.decoding import FutureLimit, decode_strict
from promotion.events import Event
from promotion.records import OutRecord
from promotion.routing import DecodedBatch, RejectedRecord
from promotion.rules import CompiledRules, dump_rules
from promotion.sessions import LateEvent
from promotion.shard import SessionConfig
from promotion.snapshot import encode_state, load_state

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
    final: bool = False, future: FutureLimit | None = None,
) -> DecodedBatch:
    """`promotion.routing.decode_batch`, with the kernel decoding and splitting. The kernel
    leaves events beyond `future` to the Python decoder, which words their rejection."""
    values = values if type(values) is list else list(values)
    decoded = (_kernel.decode(values, max_event_bytes) if future is None
               else _kernel.decode(values, max_event_bytes, future.latest_ms))
    rejected = []
    for index in decoded.unvouched:
        result = decode_strict(values[index], max_event_bytes, future)
        if type(result) is Event:
            decoded.accept(index, result)
        else:
            rejected.append(RejectedRecord(index, values[index], result))
    valid, counts = decoded.valid, decoded.type_counts()
    work = decoded.split(partition, len(keys), final)
    return DecodedBatch(list(zip(keys, work)), rejected, valid, counts)


class KernelCore:
    """A shard kept by the kernel, with the interface of `promotion.core.ShardCore`."""

    def __init__(
        self, config: SessionConfig, partitions: Sequence[str], now_ms: int, resume: bytes | None
    ) -> None:
        self._shard = _kernel.Shard(config.gap_ms, config.lateness_ms, config.idle_timeout_ms,
                                    config.profile_ttl_ms, list(partitions), now_ms)
        self._version = ""
        if resume is not None:
            # Any format: older ones are migrated by the specification's reader first.
            if resume[:1] != b"{":
                resume = encode_state(load_state(resume))
            self._shard.restore(resume, now_ms)

    @property
    def rules_document(self) -> dict | None:
        document = self._shard.rules_document()
        return None if document is None else orjson.loads(document)

    def use_rules(self, rules: CompiledRules) -> None:
        self._shard.set_rules(orjson.dumps(dump_rules(rules.rule_set)))
        self._version = rules.version

    def on_batch(self, works: Iterable[Any], now_ms: int) -> StepOutput:
        records: list[OutRecord] = []
        late: list[LateEvent] = []
        closed: list[ClosedStats] = []
        decisions: list[tuple[str, str, str]] = []
        for work in works:
            notified, ended, behind = self._shard.on_batch(work, now_ms)
            self._collect(notified, ended, records, closed, decisions)
            late += [LateEvent(Event._make(event), mark, part) for event, mark, part in behind]
        return StepOutput(records, late, closed, decisions)

    def on_tick(self, now_ms: int) -> StepOutput:
        return self._step(*self._shard.on_tick(now_ms))

    def on_eof(self) -> StepOutput:
        return self._step(*self._shard.on_eof())

    @property
    def open_users(self) -> int:
        return self._shard.open_users

    @property
    def watermark(self) -> int:
        return self._shard.watermark

    def take_counts(self) -> tuple[int, int]:
        return self._shard.take_counts()

    def snapshot(self) -> bytes:
        return self._shard.snapshot()

    def _step(self, notified: list, ended: list) -> StepOutput:
        records: list[OutRecord] = []
        closed: list[ClosedStats] = []
        decisions: list[tuple[str, str, str]] = []
        self._collect(notified, ended, records, closed, decisions)
        return StepOutput(records, [], closed, decisions)

    def _collect(self, notified: list, ended: list, records: list, closed: list,
                 decisions: list) -> None:
        version = self._version
        for user_id, value, nid, action, rule in notified:
            records.append(OutRecord(user_id.encode("utf-8"), value,
                                     [("notification_id", nid.encode("ascii"))]))
            decisions.append((action, rule, version))
        closed += [ClosedStats._make(c) for c in ended]
