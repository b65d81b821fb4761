"""The README's edges, each checked in both engines: retries behind the watermark, which copy of
a repeat is kept, `gap` against `eof` at the end of input, and the future-timestamp guard."""

from __future__ import annotations

import orjson
import pytest

from dataflows import kernel_engine
from promotion.core import ShardCore
from promotion.decoding import FUTURE_TIMESTAMP, FutureLimit, decode_event
from promotion.routing import decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from promotion.timefmt import format_ms

RULES = load_rules(DEFAULT_RULES_PATH)
ENGINES = {"python": (ShardCore, decode_batch),
           "kernel": (kernel_engine.KernelCore, kernel_engine.decode_batch)}
CONFIG = SessionConfig(gap_ms=1_000, lateness_ms=0)


def line(eid: str, user: str, ts: int, kind: str = "product_view") -> bytes:
    return orjson.dumps({"event_id": eid, "user_id": user, "type": kind, "ts": ts,
                         "source": "t", "product_id": "p1"})


class Run:
    """One shard of one engine, fed batches and ticks; what it closed, reported late and dropped."""

    def __init__(self, engine: str, config: SessionConfig = CONFIG,
                 partitions: tuple[str, ...] = ("p",)) -> None:
        factory, self._split = ENGINES[engine]
        self.core = factory(config, list(partitions), 0, None)
        self.core.use_rules(RULES)
        self.closed: list[tuple] = []
        self.late: list[str] = []
        self.rejected: list[tuple] = []

    def batch(self, lines: list[bytes], now: int = 0, final: bool = False, partition: str = "p",
              future: FutureLimit | None = None) -> None:
        decoded = self._split(partition, lines, shard_keys(1), 65_536, final, future)
        self.rejected += [tuple(r.rejection) for r in decoded.rejected]
        (_key, work), = decoded.shards
        self._take(self.core.on_batch([work], now))

    def tick(self, now: int) -> None:
        self._take(self.core.on_tick(now))

    def eof(self) -> None:
        self._take(self.core.on_eof())

    def _take(self, out) -> None:
        self.closed += [(c.close_reason, c.start, c.end, c.events) for c in out.closed]
        self.late += [x.event[1] for x in out.late]


both = pytest.mark.parametrize("engine", sorted(ENGINES))


@both
def test_a_retry_behind_the_watermark_while_its_session_is_open_is_a_duplicate(engine) -> None:
    run = Run(engine)
    run.batch([line("e1", "u", 100), line("x", "v", 600)])  # W = 600 > 100; u's session open
    run.batch([line("e1", "u", 100)])  # the exact retry, behind W
    assert run.late == []
    run.eof()
    assert run.core.take_counts()[1] == 1  # counted as a duplicate
    assert ("eof", 100, 100, 1) in run.closed  # the session has its event once


@both
def test_a_repeat_behind_the_watermark_after_its_session_closed_is_late(engine) -> None:
    run = Run(engine)
    run.batch([line("e1", "u", 100), line("x", "v", 1_200)])  # W passes 100 + gap: u closes
    run.batch([line("e1", "u", 100)])
    assert run.late == ["e1"]
    assert run.closed == [("gap", 100, 100, 1)]


@both
def test_the_first_copy_to_arrive_is_kept(engine) -> None:
    """A later copy with an earlier ts and another type is dropped: the session starts at the
    first copy's ts and counts its type."""
    run = Run(engine, SessionConfig(gap_ms=1_000, lateness_ms=1_000))  # the copy is not late
    run.batch([line("e1", "u", 500, "add_to_cart"), line("e1", "u", 200, "login")])
    run.eof()
    assert run.closed == [("eof", 500, 500, 1)]
    assert run.core.take_counts()[1] == 1


@both
def test_at_the_end_a_session_the_watermark_passed_is_gap_else_eof(engine) -> None:
    """W at the end is the newest ts minus the lateness: u (end 0, 0 + gap < 5_000) is gap,
    v (end 4_500) is eof, and no wall-clock wait between the last batch and the end changes it."""
    run = Run(engine)
    run.batch([line("a", "u", 0), line("b", "v", 4_500), line("c", "w", 5_000)], now=0)
    run.batch([], now=10, final=True)
    run.tick(10 + 86_400_000)  # a day of wall clock after the input ended
    run.eof()
    assert sorted(run.closed) == [("eof", 4_500, 4_500, 1), ("eof", 5_000, 5_000, 1),
                                  ("gap", 0, 0, 1)]


@both
def test_at_the_end_an_earlier_session_of_the_user_is_gap(engine) -> None:
    """The next event, more than the gap later, proves the gap, although W never passed it."""
    run = Run(engine, SessionConfig(gap_ms=1_000, lateness_ms=10_000))
    run.batch([line("a", "u", 0), line("b", "u", 2_000)], final=True)
    run.eof()
    assert run.closed == [("gap", 0, 0, 1), ("eof", 2_000, 2_000, 1)]


@both
def test_a_future_timestamp_is_dead_lettered_and_does_not_move_event_time(engine) -> None:
    now = 1_767_225_600_000
    future = FutureLimit(now, 3_600_000)
    run = Run(engine)
    ahead = now + 3_600_001
    run.batch([line("a", "u", now - 5_000), line("bad", "u", ahead),
               line("b", "v", now - 4_000)], now=0, future=future)
    assert run.rejected == [(FUTURE_TIMESTAMP, f"ts {format_ms(ahead)} is more than 3600 s ahead "
                             f"of the wall clock ({format_ms(now)})", "ts")]
    assert run.core.watermark == now - 4_000  # the newest accepted event, not the future one
    run.batch([line("c", "w", now - 3_000)], now=0, future=future)
    assert run.late == []
    # Exactly at the limit is accepted; a backlog far behind the clock is untouched.
    run.batch([line("d", "w", now + 3_600_000), line("e", "z", 0)], now=0, future=future)
    assert len(run.rejected) == 1 and run.late == ["e"]


def test_the_future_detail_names_fractional_limits() -> None:
    raw = line("e", "u", 10_000)
    rejection = decode_event(raw, 65_536, FutureLimit(0, 1_500))
    assert rejection.reason == FUTURE_TIMESTAMP
    assert "more than 1.5 s ahead" in rejection.detail
    assert decode_event(raw, 65_536, None).ts == 10_000  # no limit: accepted
