"""Where the time goes: the job's stages one after another in one process, in µs per event.

The stages are the ones the dataflow runs, without Bytewax around them: `decode_batch` (decode,
validate, split by shard), the shards (arrival, deadlines, sorting, folding, closing, facts and
profiles), and the output (rules, notifications, encoded records).

Two floors come with them, because they bound any design that holds events per user in Python
objects: one bare pass over the decoded events in arrival order, and the same pass over the same
objects grouped by user, which is the order session state visits them in when sessions close.
The difference between the two is memory latency, not work: an event held for minutes is no
longer in the CPU caches when its session closes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import job_gc_policy
from bench.decode_bench import BATCH
from promotion.decoding import decode_many
from promotion.events import USER_ID
from promotion.pipeline import batched, notifications_for
from promotion.records import notification_record
from promotion.routing import DecodedBatch, decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig, SessionShard

SHARDS = 64  # the job's default PROMO_SHARDS


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def _decode(lines: Sequence[bytes], keys: list[str]) -> list[DecodedBatch]:
    return [decode_batch("p", batch, keys) for batch in batched(lines, BATCH)]


def _sessions(batches: list[DecodedBatch], keys: list[str],
              config: SessionConfig = SessionConfig(gap_ms=300_000, lateness_ms=10_000),
              eof: bool = True) -> list[list]:
    shards = {key: SessionShard(config, ["p"], 0) for key in keys}
    closed = []
    for decoded in batches:
        for key, work in decoded.shards:
            result = shards[key].on_batch(work, 0)
            closed.append(result.closed)
    if eof:
        closed.extend(shard.on_eof() for shard in shards.values())
    return closed


def _output(closed: list[list], rules: Any) -> int:
    return sum(len([notification_record(n) for n in notifications_for(c, rules)]) for c in closed)


def _one_pass(events: Sequence[tuple]) -> int:
    n = 0
    for _ts, _id, _user, _kind, _source, _product, _category, _price, _quantity in events:
        n += 1
    return n


def measure_once(lines: Sequence[bytes]) -> dict[str, float]:
    """Seconds per stage for one run over `lines`."""
    keys = shard_keys(SHARDS)
    rules = load_rules(DEFAULT_RULES_PATH)
    with job_gc_policy():
        decode_s, batches = _timed(lambda: _decode(lines, keys))
        events, _rejected = decode_many(lines)  # in arrival order, as allocated
        by_user: dict[str, list[tuple]] = {}
        for event in events:
            by_user.setdefault(event[USER_ID], []).append(event)
        grouped = [e for user_events in by_user.values() for e in user_events]
        shards_s, closed = _timed(lambda: _sessions(batches, keys))
        output_s, _ = _timed(lambda: _output(closed, rules))
        # Nothing ever closes (gap and lateness of ~30 years): the cost of arrival alone.
        never = SessionConfig(gap_ms=10**12, lateness_ms=10**12)
        arrival_s, _ = _timed(lambda: _sessions(batches, keys, never, eof=False))
        arrival_order_s, _ = _timed(lambda: _one_pass(events))
        user_order_s, _ = _timed(lambda: _one_pass(grouped))
    return {"decode": decode_s, "sessions": shards_s, "output": output_s, "arrival": arrival_s,
            "pass_arrival_order": arrival_order_s, "pass_user_order": user_order_s}


def measure(lines: Sequence[bytes], repeats: int) -> dict[str, Any]:
    runs = [measure_once(lines) for _ in range(repeats)]
    us = {name: round(statistics.median(r[name] for r in runs) / len(lines) * 1e6, 3) for name in runs[0]}
    return {
        "lines": len(lines),
        "runs": repeats,
        "us_per_event": {
            "decode_validate_split": us["decode"],
            "sessions_and_closing": us["sessions"],
            "rules_and_notifications": us["output"],
            "sum_of_stages": round(us["decode"] + us["sessions"] + us["output"], 3),
            "of_which_arrival_alone": us["arrival"],
        },
        "floors_us_per_event": {
            "one_pass_arrival_order": us["pass_arrival_order"],
            "one_pass_grouped_by_user": us["pass_user_order"],
        },
        "note": "stages without Bytewax, metrics or file I/O; the floors are a bare loop over the "
                "decoded event tuples, in arrival order and grouped by user (memory latency)",
    }
