"""Where the time goes: the job's stages one after another in one process, in µs per event.

The stages are the ones the dataflow runs, without Bytewax around them, for each engine:

* the Python engine (`promotion.routing.decode_batch`, `promotion.core.ShardCore`): decoding
  (decode, validate, split by shard), the shards (arrival, deadlines, sorting, folding, closing,
  facts and profiles), and the output (rules, notifications, encoded records);
* the kernel engine (`dataflows.kernel_engine`): the kernel's decode and split (with the Python
  decoder only for the records the kernel does not vouch for), the kernel's shard step (sessions,
  profiles, rules and encoded notifications, returned as plain tuples), and the Python-side
  wrapping of what it returns (`OutRecord`s, closed-session stats) that `KernelCore` adds.

Two floors come with them, because they bound any design that holds events per user in Python
objects: one bare pass over the decoded events in arrival order, and the same pass over the same
objects grouped by user, which is the order session state visits them in when sessions close.
The difference between the two is memory latency, not work: an event held for minutes is no
longer in the CPU caches when its session closes.

`rust_example` runs the crate's own example (`kernel/examples/throughput.rs`: decoding, and the
sessions of 64 shards, with no Python at all) when cargo is there.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, job_gc_policy, shard_cores
from bench.decode_bench import BATCH
from promotion.decoding import DEFAULT_MAX_EVENT_BYTES, decode_many
from promotion.events import USER_ID, Event
from promotion.pipeline import batched, notifications_for
from promotion.records import notification_record
from promotion.routing import DecodedBatch, decode_batch, shard_keys
from promotion.rules import DEFAULT_RULES_PATH, CompiledRules, load_rules
from promotion.sessions import LateEvent
from promotion.shard import SessionConfig, SessionShard

SHARDS = 64  # the job's default PROMO_SHARDS
CONFIG = SessionConfig(gap_ms=300_000, lateness_ms=10_000)  # profiles on (30-day TTL)
#: Nothing ever closes (gap and lateness of ten years, the settings' bound): arrival alone.
NEVER = SessionConfig(gap_ms=10 * 365 * 86_400_000, lateness_ms=10 * 365 * 86_400_000)
KERNEL_DIR = ROOT / "kernel"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


# -- the Python engine --------------------------------------------------------------------------


def _decode(lines: Sequence[bytes], keys: list[str]) -> list[DecodedBatch]:
    return [decode_batch("p", batch, keys) for batch in batched(lines, BATCH)]


def _sessions(batches: list[DecodedBatch], keys: list[str], config: SessionConfig = CONFIG,
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
    """Seconds per stage of the Python engine for one run over `lines`."""
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
        arrival_s, _ = _timed(lambda: _sessions(batches, keys, NEVER, eof=False))
        arrival_order_s, _ = _timed(lambda: _one_pass(events))
        user_order_s, _ = _timed(lambda: _one_pass(grouped))
    return {"decode": decode_s, "sessions": shards_s, "output": output_s, "arrival": arrival_s,
            "pass_arrival_order": arrival_order_s, "pass_user_order": user_order_s}


# -- the kernel engine --------------------------------------------------------------------------


def kernel_available() -> bool:
    try:
        from dataflows import kernel_engine
    except ImportError:
        return False
    return kernel_engine.available()


def _kernel_decode(lines: Sequence[bytes], keys: list[str]) -> list[DecodedBatch]:
    from dataflows.kernel_engine import decode_batch as kernel_decode_batch

    return [kernel_decode_batch("p", batch, keys, DEFAULT_MAX_EVENT_BYTES)
            for batch in batched(lines, BATCH)]


def _kernel_cores(keys: list[str], config: SessionConfig, rules: CompiledRules) -> dict[str, Any]:
    from dataflows.kernel_engine import KernelCore

    return shard_cores(KernelCore, config, "p", keys, rules)


def _kernel_step(cores: dict[str, Any], batches: list[DecodedBatch], eof: bool = True) -> list:
    """The kernel's own shard step (`Shard.on_batch` / `on_eof`): what it returns, unwrapped."""
    raw = []
    for decoded in batches:
        for key, work in decoded.shards:
            notified, ended, behind = cores[key]._shard.on_batch(work, 0)
            raw.append((cores[key], notified, ended, behind))
    if eof:
        for core in cores.values():
            notified, ended = core._shard.on_eof()
            raw.append((core, notified, ended, []))
    return raw


def _kernel_wrap(raw: list) -> int:
    """What `KernelCore` adds around the kernel's step: OutRecords, closed stats, late events."""
    n = 0
    for core, notified, ended, behind in raw:
        records: list = []
        closed: list = []
        decisions: list = []
        core._collect(notified, ended, records, closed, decisions)
        late = [LateEvent(Event._make(event), mark, part) for event, mark, part in behind]
        n += len(records) + len(late)
    return n


def _kernel_whole(batches: list[DecodedBatch], keys: list[str], rules: CompiledRules) -> int:
    """`KernelCore.on_batch` / `on_eof` as the session step calls them (step and wrapping)."""
    cores = _kernel_cores(keys, CONFIG, rules)
    n = 0
    for decoded in batches:
        for key, work in decoded.shards:
            n += len(cores[key].on_batch([work], 0).notifications)
    return n + sum(len(core.on_eof().notifications) for core in cores.values())


def measure_kernel_once(lines: Sequence[bytes]) -> dict[str, float]:
    """Seconds per stage of the kernel engine for one run over `lines`.

    A decoded batch's work is consumed by the shard step (the kernel moves the events out), so
    each pass over the shards decodes afresh, untimed."""
    keys = shard_keys(SHARDS)
    rules = load_rules(DEFAULT_RULES_PATH)
    with job_gc_policy():
        decode_s, batches = _timed(lambda: _kernel_decode(lines, keys))
        cores = _kernel_cores(keys, CONFIG, rules)
        step_s, raw = _timed(lambda: _kernel_step(cores, batches))
        wrap_s, _ = _timed(lambda: _kernel_wrap(raw))
        del raw, cores
        batches = _kernel_decode(lines, keys)
        whole_s, _ = _timed(lambda: _kernel_whole(batches, keys, rules))
        batches = _kernel_decode(lines, keys)
        never = _kernel_cores(keys, NEVER, rules)
        arrival_s, _ = _timed(lambda: _kernel_step(never, batches, eof=False))
    return {"decode": decode_s, "step": step_s, "wrap": wrap_s, "whole": whole_s,
            "arrival": arrival_s}


# -- the crate's own example --------------------------------------------------------------------

_EXAMPLE_LINE = re.compile(
    r"decode ([\d.]+) s \(([\d.]+) us/event\), sessions ([\d.]+) s \(([\d.]+) us/event\), "
    r"closed (\d+)")


def rust_example(path: Path, repeats: int, timeout: float = 900) -> dict[str, Any]:
    """`cargo run --release --example throughput -- FILE` in kernel/: the kernel without Python
    (decoding, and the sessions of 64 shards: no profiles, rules or encoding). The first run
    builds the example (not timed: the example times its own stages)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        return {"skipped": "cargo not found"}
    command = [cargo, "run", "--quiet", "--locked", "--release", "--example", "throughput", "--",
               str(path)]
    runs = []
    began = time.perf_counter()
    for _ in range(repeats):
        try:
            proc = subprocess.run(command, cwd=KERNEL_DIR, capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "CARGO_TERM_COLOR": "never"})
        except subprocess.TimeoutExpired:
            return {"skipped": f"cargo run did not finish within {timeout:.0f} s"}
        match = _EXAMPLE_LINE.search(proc.stdout)
        if proc.returncode != 0 or match is None:
            return {"skipped": f"cargo run failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout)[-500:]}"}
        runs.append(match)
    decode_us = statistics.median(float(m.group(2)) for m in runs)
    sessions_us = statistics.median(float(m.group(4)) for m in runs)
    return {
        "runs": repeats,
        "decode_us_per_event": round(decode_us, 3),
        "sessions_us_per_event": round(sessions_us, 3),
        "sum_us_per_event": round(decode_us + sessions_us, 3),
        "events_per_s": round(1e6 / (decode_us + sessions_us)) if decode_us + sessions_us else 0,
        "closed_sessions": int(runs[-1].group(5)),
        "seconds_incl_build": round(time.perf_counter() - began, 1),
        "note": "kernel/examples/throughput.rs, cargo --release: decode_plain and 64 ShardSessions "
                "(split included), no Python, no profiles, rules or notifications",
    }


# -- both -----------------------------------------------------------------------------------------


def measure(lines: Sequence[bytes], repeats: int, path: Path | None = None) -> dict[str, Any]:
    runs = [measure_once(lines) for _ in range(repeats)]

    def us(rs: list[dict[str, float]], name: str) -> float:
        return round(statistics.median(r[name] for r in rs) / len(lines) * 1e6, 3)

    py = {name: us(runs, name) for name in runs[0]}
    out: dict[str, Any] = {
        "lines": len(lines),
        "runs": repeats,
        "us_per_event": {
            "decode_validate_split": py["decode"],
            "sessions_and_closing": py["sessions"],
            "rules_and_notifications": py["output"],
            "sum_of_stages": round(py["decode"] + py["sessions"] + py["output"], 3),
            "of_which_arrival_alone": py["arrival"],
        },
        "floors_us_per_event": {
            "one_pass_arrival_order": py["pass_arrival_order"],
            "one_pass_grouped_by_user": py["pass_user_order"],
        },
        "note": "stages without Bytewax, metrics or file I/O; the floors are a bare loop over the "
                "decoded event tuples, in arrival order and grouped by user (memory latency)",
    }
    if not kernel_available():
        out["kernel"] = {"skipped": "promotions_kernel is not installed (make kernel)"}
        return out
    kruns = [measure_kernel_once(lines) for _ in range(repeats)]
    k = {name: us(kruns, name) for name in kruns[0]}
    out["kernel"] = {
        "us_per_event": {
            "decode_split": k["decode"],
            "shard_step": k["step"],
            "python_wrapping": k["wrap"],
            "sum_of_stages": round(k["decode"] + k["step"] + k["wrap"], 3),
            "core_on_batch_whole": k["whole"],
            "of_which_arrival_alone": k["arrival"],
        },
        "vs_python_engine": {
            "decode": round(py["decode"] / k["decode"], 2) if k["decode"] else 0.0,
            "shards_incl_rules_and_output": round(
                (py["sessions"] + py["output"]) / (k["step"] + k["wrap"]), 2)
            if k["step"] + k["wrap"] else 0.0,
        },
        "note": "decode_split = dataflows.kernel_engine.decode_batch (kernel decode, Python "
                "decode_strict for unvouched records, split by shard); shard_step = the kernel "
                "Shard.on_batch/on_eof (sessions, profiles, rules, encoded notifications) as "
                "returned tuples; python_wrapping = KernelCore's OutRecord / ClosedStats / "
                "LateEvent building over those tuples; core_on_batch_whole = KernelCore.on_batch "
                "and on_eof timed as one (step + wrapping, a separate pass)",
    }
    if path is not None:
        out["kernel"]["rust_example"] = rust_example(path, repeats)
    return out
