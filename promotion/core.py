"""A shard's whole per-step work, in Python: sessions, then decisions and encoded records.

`ShardCore` is what the dataflow's session step drives (`dataflows/session_step.py`); the compiled
kernel offers the same interface (`dataflows/kernel_engine.py`) and must produce the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from promotion.facts import SessionFacts
from promotion.pipeline import notifications_for
from promotion.records import OutRecord, notification_record
from promotion.rules import CompiledRules, dump_rules
from promotion.sessions import LateEvent
from promotion.shard import SessionConfig, SessionShard


class ClosedStats(NamedTuple):
    """What a closed session tells the metrics."""

    close_reason: str
    start: int
    end: int
    events: int


class StepOutput(NamedTuple):
    notifications: list[OutRecord]
    late: list[LateEvent]
    closed: list[ClosedStats]
    decisions: list[tuple[str, str, str]]  # (action, rule, rules_version) per notification


class ShardCore:
    """The Python specification: `SessionShard`, and the rules applied to what closes."""

    def __init__(
        self, config: SessionConfig, partitions: Sequence[str], now_ms: int, resume: bytes | None
    ) -> None:
        if resume is None:
            self.shard = SessionShard(config, partitions, now_ms)
        else:
            self.shard = SessionShard.restore(config, partitions, now_ms, resume)
        self._rules: CompiledRules | None = None

    @property
    def rules_document(self) -> dict | None:
        return self.shard.rules_document

    def use_rules(self, rules: CompiledRules) -> None:
        self._rules = rules
        self.shard.rules_document = dump_rules(rules.rule_set)

    def on_batch(self, works: Iterable[Any], now_ms: int) -> StepOutput:
        closed: list[SessionFacts] = []
        late: list[LateEvent] = []
        for work in works:
            result = self.shard.on_batch(work, now_ms)
            closed += result.closed
            late += result.late
        return self._decide(closed, late)

    def on_tick(self, now_ms: int) -> StepOutput:
        return self._decide(self.shard.on_tick(now_ms), [])

    def on_eof(self) -> StepOutput:
        return self._decide(self.shard.on_eof(), [])

    @property
    def open_users(self) -> int:
        return self.shard.open_users

    @property
    def watermark(self) -> int:
        return self.shard.watermark

    def take_counts(self) -> tuple[int, int]:
        return self.shard.take_counts()

    def snapshot(self) -> bytes:
        return self.shard.snapshot()

    def _decide(self, closed: list[SessionFacts], late: list[LateEvent]) -> StepOutput:
        assert self._rules is not None, "use_rules first"
        notifications = notifications_for(closed, self._rules)
        return StepOutput(
            [notification_record(n) for n in notifications],
            late,
            [ClosedStats(f.close_reason, f.start, f.end, f.events) for f in closed],
            [(n["action"], n["rule"], n["rules_version"]) for n in notifications],
        )
