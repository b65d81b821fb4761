"""Throughput of the decode path alone and of the offline core, in the same process.

`decode_batch` is decoding + validation + splitting by shard; `run_offline` is the whole core
(decode, sessions, rules, notifications) with no framework around it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import job_gc_policy
from promotion.pipeline import run_offline
from promotion.routing import decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

BATCH = 10_000  # the job's default PROMO_BATCH_SIZE


def read_lines(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        return [line.rstrip(b"\r\n") for line in f if line.strip()]


def _decode_all(lines: Sequence[bytes], keys: list[str]) -> int:
    return sum(decode_batch("p", lines[i : i + BATCH], keys).valid for i in range(0, len(lines), BATCH))


def _offline(lines: Sequence[bytes]) -> int:
    config = SessionConfig(gap_ms=300_000, lateness_ms=10_000)
    with job_gc_policy():
        return len(run_offline(lines, config, load_rules(DEFAULT_RULES_PATH)).notifications)


def measure(lines: Sequence[bytes], repeats: int) -> dict[str, object]:
    keys = shard_keys(64)
    cases = {"decode_batch": lambda: _decode_all(lines, keys), "run_offline": lambda: _offline(lines)}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        for name, fn in cases.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    out: dict[str, object] = {
        f"{name}_events_per_s": round(len(lines) / statistics.median(t)) for name, t in times.items()
    }
    out["decode_share_of_core"] = round(
        statistics.median(times["decode_batch"]) / statistics.median(times["run_offline"]), 3
    )
    return out
