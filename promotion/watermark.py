"""Event-time progress: per-input-partition high-water marks, minimum across partitions.

Like Flink's per-partition watermarks: partitions are read at different speeds, so only the slowest
partition's progress is safe. The watermark W promises that every event still to come has
ts >= W; an event with ts < W is late. W = min over active partitions of (high-water mark) minus the
allowed lateness, and never goes back.

Wall-clock time (`now_ms`, passed in; this module never reads a clock) is used only for idleness:
* a partition silent for `idle_timeout_ms` stops holding the watermark back;
* when every partition is silent that long, event time is assumed to keep flowing at wall-clock
  speed from the last event seen, so idle input still closes sessions (live or after a replay).
  Not once every partition has ended (a bounded input): W then stays at the newest ts of the
  input minus the allowed lateness, so what closes by gap before the end does not depend on how
  long the end takes to arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

#: Below any real timestamp: "no progress yet".
NO_TIME: Final = -(2**62)


class Watermark:
    """The event-time clock of one shard."""

    __slots__ = ("lateness_ms", "idle_timeout_ms", "high", "seen", "value", "finished")

    def __init__(
        self,
        partitions: Iterable[str],
        lateness_ms: int,
        idle_timeout_ms: int,
        now_ms: int,
        high: dict[str, int] | None = None,
        value: int = NO_TIME,
    ) -> None:
        self.lateness_ms = lateness_ms
        self.idle_timeout_ms = idle_timeout_ms
        #: Highest ts seen per partition (NO_TIME: known but not heard from yet).
        self.high: dict[str, int] = {p: NO_TIME for p in partitions}
        if high:
            self.high.update(high)
        #: Wall-clock ms at which each partition was last heard from. Not persisted: after a
        #: restart every partition gets a fresh idle timeout.
        self.seen: dict[str, int] = {p: now_ms for p in self.high}
        #: Partitions that reported their end (bounded input): they never hold the watermark.
        self.finished: set[str] = set()
        self.value = value

    def restore(self, high: dict[str, int], value: int, now_ms: int) -> None:
        """Adopt the partition marks and value of a snapshot (partitions it names are added,
        each with a fresh idle timeout)."""
        for name, mark in high.items():
            self.high[name] = mark
            self.seen.setdefault(name, now_ms)
        self.value = value

    def raise_high(self, partition: str, high: int) -> None:
        if high > self.high.get(partition, NO_TIME):
            self.high[partition] = high

    def floor_excluding(self, partition: str, now_ms: int) -> int:
        """Min high-water mark over the other active partitions (NO_TIME holds it back)."""
        floor = 2**62
        limit = now_ms - self.idle_timeout_ms
        seen = self.seen
        finished = self.finished
        for name, high in self.high.items():
            if name != partition and seen[name] > limit and high < floor and name not in finished:
                floor = high
        return floor

    def end_batch(self, partition: str, batch_high: int, now_ms: int, final: bool = False) -> None:
        """Record a partition's progress after one of its batches, and advance."""
        if final:
            self.finished.add(partition)
        else:
            self.finished.discard(partition)
        if batch_high > self.high.get(partition, NO_TIME):
            self.high[partition] = batch_high
        elif partition not in self.high:
            self.high[partition] = NO_TIME
        self.seen[partition] = now_ms
        self.advance(now_ms)

    def advance(self, now_ms: int) -> None:
        """Recompute from the partitions' marks; move forward by wall clock when all are idle."""
        if not self.high:
            return
        limit = now_ms - self.idle_timeout_ms
        active = [
            high
            for name, high in self.high.items()
            if self.seen[name] > limit and name not in self.finished
        ]
        if active:
            floor = min(active)
            if floor == NO_TIME:
                return
            candidate = floor - self.lateness_ms
        else:
            latest = max(self.high.values())
            if latest == NO_TIME:
                return
            candidate = latest - self.lateness_ms
            if len(self.finished) < len(self.high):  # idle, not ended: time goes on
                candidate += now_ms - max(self.seen.values())
        if candidate > self.value:
            self.value = candidate
