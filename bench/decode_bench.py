"""Before/after figures of the decode path, measured in the same process and interleaved.

"before" is `bench.baseline_decoding` (a frozen copy of the decoder before the speed-ups);
"after" is `promotion.routing.decode_batch`. `run_offline` is measured with each of them plugged in.
Both decoders must agree on every record of the file (checked first).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import promotion.pipeline as pipeline
from bench import baseline_decoding
from promotion.routing import decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

BATCH = 2_000


def read_lines(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        return [line.rstrip(b"\r\n") for line in f if line.strip()]


def _decode_all(decoder: Callable, lines: Sequence[bytes], keys: list[str]) -> int:
    valid = 0
    for i in range(0, len(lines), BATCH):
        valid += decoder("p", lines[i : i + BATCH], keys).valid
    return valid


@contextmanager
def _pipeline_decoder(decoder: Callable) -> Iterator[None]:
    saved = pipeline.decode_batch
    pipeline.decode_batch = decoder
    try:
        yield
    finally:
        pipeline.decode_batch = saved


def _offline(decoder: Callable, lines: Sequence[bytes]) -> int:
    rules = load_rules(DEFAULT_RULES_PATH)
    with _pipeline_decoder(decoder):
        result = pipeline.run_offline(lines, SessionConfig(gap_ms=300_000, lateness_ms=10_000), rules)
    return len(result.notifications)


def check_same(lines: Sequence[bytes], keys: list[str]) -> None:
    """Both decoders give the same shards, events, highs, rejections and type counts."""
    for i in range(0, len(lines), BATCH):
        chunk = lines[i : i + BATCH]
        old = baseline_decoding.decode_batch("p", chunk, keys)
        new = decode_batch("p", chunk, keys)
        if old != new:
            raise AssertionError(f"decoders disagree on batch at line {i}")


def measure(lines: Sequence[bytes], repeats: int) -> dict[str, object]:
    keys = shard_keys(64)
    check_same(lines, keys)
    cases = {
        "decode_batch_before": lambda: _decode_all(baseline_decoding.decode_batch, lines, keys),
        "decode_batch_after": lambda: _decode_all(decode_batch, lines, keys),
        "run_offline_before": lambda: _offline(baseline_decoding.decode_batch, lines),
        "run_offline_after": lambda: _offline(decode_batch, lines),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    results: dict[str, int] = {}
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        for name, fn in cases.items():
            began = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - began)
    if results["run_offline_before"] != results["run_offline_after"]:
        raise AssertionError("run_offline gives different notifications with the new decoder")
    out: dict[str, object] = {
        f"{name}_events_per_s": round(len(lines) / statistics.median(t)) for name, t in times.items()
    }
    out["decode_batch_speedup"] = round(
        statistics.median(times["decode_batch_before"]) / statistics.median(times["decode_batch_after"]), 2
    )
    out["run_offline_speedup"] = round(
        statistics.median(times["run_offline_before"]) / statistics.median(times["run_offline_after"]), 2
    )
    return out


if __name__ == "__main__":
    import sys

    import orjson

    for arg in sys.argv[1:]:
        print(arg, orjson.dumps(measure(read_lines(Path(arg)), 3)).decode())
