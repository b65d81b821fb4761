"""The Bytewax adapter around `SessionShard`: wall clock in, encoded lines out."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from bytewax.operators import StatefulBatchLogic

from dataflows import metrics
from dataflows.rules_watch import RulesWatcher, compiled_from_document, digest_of
from promotion.facts import SessionFacts
from promotion.pipeline import notifications_for
from promotion.records import OutRecord, late_record, notification_record
from promotion.rules import dump_rules
from promotion.shard import EngineFactory, LateEvent, PythonEngine, SessionConfig, SessionShard

Clock = Callable[[], int]  # wall-clock epoch milliseconds


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
        engine: EngineFactory = PythonEngine,
    ) -> None:
        now = clock()
        if resume is None:
            self.shard = SessionShard(config, partitions, now, engine)
        else:
            self.shard = SessionShard.restore(config, partitions, now, resume, engine)
        self._watcher = rules
        # After a resume, decide with the rules the shard had, until the watcher says otherwise.
        if self.shard.rules_document is not None:
            self._rules = compiled_from_document(self.shard.rules_document)
            self._digest = digest_of(self._rules)
        else:
            self._digest, self._rules = rules.current(now)
            self.shard.rules_document = dump_rules(self._rules.rule_set)
        self._clock = clock
        self._recovery = recovery
        self._tick_ms = tick_ms
        self._next_tick = now + tick_ms
        self._reported_open = 0
        self._name = f"shard@{id(self):x}"

    def on_batch(self, values: list[Any]) -> tuple[Iterable[ShardOutput], bool]:
        now = self._clock()
        self._follow_rules(now)
        closed: list[SessionFacts] = []
        late: list[LateEvent] = []
        for work in values:
            result = self.shard.on_batch(work, now)
            closed.extend(result.closed)
            late.extend(result.late)
        return self._emit(closed, late, now), self.RETAIN

    def on_notify(self) -> tuple[Iterable[ShardOutput], bool]:
        now = self._clock()
        self._next_tick = now + self._tick_ms
        self._follow_rules(now)
        return self._emit(self.shard.on_tick(now), [], now), self.RETAIN

    def on_eof(self) -> tuple[Iterable[ShardOutput], bool]:
        return self._emit(self.shard.on_eof(), [], self._clock()), self.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.shard.open_users:
            return None
        return datetime.fromtimestamp(self._next_tick / 1000, tz=timezone.utc)

    def snapshot(self) -> bytes:
        # Without a recovery store the snapshot is thrown away: don't pickle the whole shard.
        return self.shard.snapshot() if self._recovery else b""

    def _follow_rules(self, now: int) -> None:
        digest, rules = self._watcher.current(now)
        if digest != self._digest:
            self._digest, self._rules = digest, rules
            self.shard.rules_document = dump_rules(rules.rule_set)

    def _emit(self, closed: list[SessionFacts], late: list[LateEvent], now: int) -> list[ShardOutput]:
        shard = self.shard
        open_users = shard.open_users
        if open_users != self._reported_open:
            metrics.OPEN_SESSIONS.inc(open_users - self._reported_open)
            self._reported_open = open_users
        metrics.record_watermark(self._name, shard.watermark)
        opened, duplicates = shard.take_counts()
        if opened:
            metrics.SESSIONS_OPENED.inc(opened)
        if duplicates:
            metrics.DUPLICATES.inc(duplicates)
        if late:
            metrics.LATE.inc(len(late))
        if not closed and not late:
            return []
        latencies: dict[str, list[float]] = {}
        for facts in closed:
            latencies.setdefault(facts.close_reason, []).append(max(0, now - facts.end) / 1000)
        for reason, values in latencies.items():
            _closed(reason).inc(len(values))
            metrics.observe_many(_latency(reason), values)
        metrics.observe_many(metrics.SESSION_DURATION, [(f.end - f.start) / 1000 for f in closed])
        metrics.observe_many(metrics.SESSION_EVENTS, [f.events for f in closed])
        notifications = notifications_for(closed, self._rules)
        by_decision: dict[tuple[str, str, str], int] = {}
        for n in notifications:
            key = (n["action"], n["rule"], n["rules_version"])
            by_decision[key] = by_decision.get(key, 0) + 1
        for key, count in by_decision.items():
            metrics.NOTIFICATIONS.labels(*key).inc(count)
        return [
            ShardOutput(
                [notification_record(n) for n in notifications], [late_record(x) for x in late]
            )
        ]
