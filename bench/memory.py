"""Bytes per open session, in-process: decode + shard a file of one event per user, close nothing.

Run in a fresh interpreter (`python -m bench.memory MODE FILE`) so the baseline is clean:
* `rss`: resident set growth (what the machine pays, allocator overhead included), plus the size
  of the shards' snapshots;
* `tracemalloc`: Python heap growth (what the state's objects take), slower.
Prints one JSON object.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

from bench.common import self_rss_bytes
from promotion.pipeline import batched
from promotion.routing import decode_batch, shard_keys
from promotion.shard import SessionConfig, SessionShard


def _drive(path: Path, shards: int = 64) -> dict[str, SessionShard]:
    keys = shard_keys(shards)
    config = SessionConfig(gap_ms=300_000, lateness_ms=10_000)
    state = {key: SessionShard(config, ["input"], now_ms=0) for key in keys}
    closed = 0
    with path.open("rb") as f:
        for batch in batched((line.rstrip(b"\n") for line in f), 2_000):
            for key, work in decode_batch("input", batch, keys).shards:
                result = state[key].on_batch(work, now_ms=0)
                closed += len(result.closed)
    if closed:
        raise AssertionError(f"{closed} sessions closed: the input must keep every session open")
    return state


def measure(mode: str, path: Path) -> dict[str, object]:
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else self_rss_bytes()
    began = time.perf_counter()
    state = _drive(path)
    seconds = time.perf_counter() - began
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else self_rss_bytes()
    open_sessions = sum(shard.open_users for shard in state.values())
    out: dict[str, object] = {
        "mode": mode,
        "open_sessions": open_sessions,
        "growth_bytes": after - before,
        "bytes_per_open_session": round((after - before) / max(open_sessions, 1)),
        "seconds": round(seconds, 2),
    }
    if mode == "rss":
        began = time.perf_counter()
        size = sum(len(shard.snapshot()) for shard in state.values())
        out["snapshot_bytes_per_open_session"] = round(size / max(open_sessions, 1))
        out["snapshot_all_shards_seconds"] = round(time.perf_counter() - began, 3)
    return out


if __name__ == "__main__":
    print(orjson.dumps(measure(sys.argv[1], Path(sys.argv[2]))).decode())
