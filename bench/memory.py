"""Bytes of state, in-process: decode a file and drive the 64 shard cores of one engine over it.

Run in a fresh interpreter so the baseline is clean:

    python -m bench.memory MODE FILE [--engine kernel|python] [--gap-ms N] [--eof]

* `MODE` `rss`: resident set growth (what the machine pays, allocator overhead included), plus
  the size of the shards' snapshots; `tracemalloc`: Python heap growth (what the state's Python
  objects take; Python engine only, the kernel's memory is not Python's), slower.
* Without `--eof` nothing may close (the input and `--gap-ms` must keep every session open): the
  figure is bytes per open session. With `--eof` the input's sessions close (by gap along the
  way, the rest at the end of input), leaving only profiles: the figure is bytes per profile.

The engines are driven the way the session step drives them: `decode_batch` of the engine, then
`core.on_batch([work], now)` per shard (`promotion.core.ShardCore` or
`dataflows.kernel_engine.KernelCore`, with the default rules). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from bench.common import self_rss_bytes, shard_cores
from promotion.decoding import DEFAULT_MAX_EVENT_BYTES
from promotion.pipeline import batched
from promotion.routing import shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

SHARDS = 64


def _engine(name: str) -> tuple[Any, Any]:
    if name == "kernel":
        from dataflows import kernel_engine

        if not kernel_engine.available():
            raise SystemExit(kernel_engine.MISSING)
        return kernel_engine.decode_batch, kernel_engine.KernelCore
    from promotion.core import ShardCore
    from promotion.routing import decode_batch

    return decode_batch, ShardCore


def profiles_of(core: Any) -> int:
    shard = core._shard if hasattr(core, "_shard") else core.shard
    profiles = shard.profiles
    return profiles if isinstance(profiles, int) else len(profiles)


def _drive(path: Path, engine: str, gap_ms: int, eof: bool) -> tuple[dict[str, Any], int]:
    decode, factory = _engine(engine)
    keys = shard_keys(SHARDS)
    rules = load_rules(DEFAULT_RULES_PATH)
    config = SessionConfig(gap_ms=gap_ms, lateness_ms=10_000)
    state = shard_cores(factory, config, "input", keys, rules)
    closed = 0
    with path.open("rb") as f:
        for batch in batched((line.rstrip(b"\n") for line in f), 2_000):
            for key, work in decode("input", batch, keys, DEFAULT_MAX_EVENT_BYTES).shards:
                closed += len(state[key].on_batch([work], 0).closed)
    if eof:
        for core in state.values():
            closed += len(core.on_eof().closed)
    elif closed:
        raise AssertionError(f"{closed} sessions closed: the input must keep every session open")
    return state, closed


def measure(mode: str, path: Path, engine: str = "python", gap_ms: int = 300_000,
            eof: bool = False) -> dict[str, object]:
    if mode == "tracemalloc" and engine != "python":
        raise SystemExit("tracemalloc sees only Python's heap: use rss for the kernel")
    _engine(engine)  # imports (and the kernel's library) before the baseline
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else self_rss_bytes()
    began = time.perf_counter()
    state, closed = _drive(path, engine, gap_ms, eof)
    seconds = time.perf_counter() - began
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else self_rss_bytes()
    open_sessions = sum(core.open_users for core in state.values())
    profiles = sum(profiles_of(core) for core in state.values())
    growth = after - before
    out: dict[str, object] = {
        "mode": mode,
        "engine": engine,
        "gap_ms": gap_ms,
        "open_sessions": open_sessions,
        "closed_sessions": closed,
        "profiles": profiles,
        "growth_bytes": growth,
        "seconds": round(seconds, 2),
    }
    if eof:
        if open_sessions:
            raise AssertionError(f"{open_sessions} sessions still open after the end of input")
        out["bytes_per_profile"] = round(growth / max(profiles, 1))
    else:
        out["bytes_per_open_session"] = round(growth / max(open_sessions, 1))
    if mode == "rss":
        began = time.perf_counter()
        size = sum(len(core.snapshot()) for core in state.values())
        per = profiles if eof else open_sessions
        out["snapshot_bytes_per_" + ("profile" if eof else "open_session")] = round(size / max(per, 1))
        out["snapshot_all_shards_seconds"] = round(time.perf_counter() - began, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("mode", choices=("rss", "tracemalloc"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--engine", choices=("kernel", "python"), default="python")
    parser.add_argument("--gap-ms", type=int, default=300_000)
    parser.add_argument("--eof", action="store_true")
    args = parser.parse_args()
    print(orjson.dumps(measure(args.mode, args.file, args.engine, args.gap_ms, args.eof)).decode())


if __name__ == "__main__":
    main()
