"""The Bytewax adapter around a shard core: wall clock in, encoded records and metrics out.

The core is the Python specification (`promotion.core.ShardCore`) or the compiled kernel
(`dataflows.kernel_engine.KernelCore`), chosen by `PROMO_ENGINE`; both give the same records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from bytewax.operators import StatefulBatchLogic

from dataflows import metrics
from dataflows.rules_watch import RulesWatcher, compiled_from_document, digest_of
from promotion.core import ShardCore, StepOutput
from promotion.records import OutRecord, late_record
from promotion.shard import SessionConfig

Clock = Callable[[], int]  # wall-clock epoch milliseconds
CoreFactory = Callable[[SessionConfig, Sequence[str], int, "bytes | None"], Any]


@functools.cache
def _closed(reason: str):  # labelled children, looked up once per reason
    return metrics.SESSIONS_CLOSED.labels(reason)


@functools.cache
def _latency(reason: str):
    return metrics.NOTIFICATION_LATENCY.labels(reason)


class ShardOutput(NamedTuple):
    notifications: list[OutRecord]
    late: list[OutRecord]


class ShardLogic(StatefulBatchLogic[Any, ShardOutput, bytes]):
    """One shard's sessions; ticks on the wall clock so idle input still closes sessions."""

    def __init__(
        self,
        config: SessionConfig,
        partitions: Sequence[str],
        rules: RulesWatcher,
        clock: Clock,
        tick_ms: int,
        resume: bytes | None,
        recovery: bool = True,
        core: CoreFactory = ShardCore,
    ) -> None:
        now = clock()
        self.core = core(config, partitions, now, resume)
        self._watcher = rules
        # After a resume, decide with the rules the shard had, until the watcher says otherwise.
        document = self.core.rules_document
        if document is not None:
            compiled = compiled_from_document(document)
            self._digest = digest_of(compiled)
        else:
            self._digest, compiled = rules.current(now)
        self.core.use_rules(compiled)
        self._clock = clock
        self._recovery = recovery
        self._tick_ms = tick_ms
        self._next_tick = now + tick_ms
        self._reported_open = 0
        self._name = f"shard@{id(self):x}"

    def on_batch(self, values: list[Any]) -> tuple[Iterable[ShardOutput], bool]:
        now = self._clock()
        self._follow_rules(now)
        return self._emit(self.core.on_batch(values, now), now), self.RETAIN

    def on_notify(self) -> tuple[Iterable[ShardOutput], bool]:
        now = self._clock()
        self._next_tick = now + self._tick_ms
        self._follow_rules(now)
        return self._emit(self.core.on_tick(now), now), self.RETAIN

    def on_eof(self) -> tuple[Iterable[ShardOutput], bool]:
        return self._emit(self.core.on_eof(), self._clock()), self.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.core.open_users:
            return None
        return datetime.fromtimestamp(self._next_tick / 1000, tz=timezone.utc)

    def snapshot(self) -> bytes:
        # Without a recovery store the snapshot is thrown away: don't encode the whole shard.
        return self.core.snapshot() if self._recovery else b""

    def _follow_rules(self, now: int) -> None:
        digest, rules = self._watcher.current(now)
        if digest != self._digest:
            self._digest = digest
            self.core.use_rules(rules)

    def _emit(self, step: StepOutput, now: int) -> list[ShardOutput]:
        core = self.core
        open_users = core.open_users
        if open_users != self._reported_open:
            metrics.OPEN_SESSIONS.inc(open_users - self._reported_open)
            self._reported_open = open_users
        metrics.record_watermark(self._name, core.watermark)
        opened, duplicates = core.take_counts()
        if opened:
            metrics.SESSIONS_OPENED.inc(opened)
        if duplicates:
            metrics.DUPLICATES.inc(duplicates)
        if step.late:
            metrics.LATE.inc(len(step.late))
        if not step.closed and not step.late:
            return []
        latencies: dict[str, list[float]] = {}
        for reason, _start, end, _events in step.closed:
            latencies.setdefault(reason, []).append(max(0, now - end) / 1000)
        for reason, values in latencies.items():
            _closed(reason).inc(len(values))
            metrics.observe_many(_latency(reason), values)
        metrics.observe_many(metrics.SESSION_DURATION, [(c.end - c.start) / 1000 for c in step.closed])
        metrics.observe_many(metrics.SESSION_EVENTS, [c.events for c in step.closed])
        by_decision: dict[tuple[str, str, str], int] = {}
        for key in step.decisions:
            by_decision[key] = by_decision.get(key, 0) + 1
        for key, count in by_decision.items():
            metrics.NOTIFICATIONS.labels(*key).inc(count)
        return [ShardOutput(step.notifications, [late_record(x) for x in step.late])]
