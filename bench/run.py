"""Benchmark of session-promotions (`make bench`; `BENCH_QUICK=1` for a run of a few minutes).

Measures, and writes to `bench/results.json`, for both engines (`PROMO_ENGINE=kernel`, the
compiled kernel and the default, and `PROMO_ENGINE=python`, the specification) side by side:
* file to file events/s per process of the full job (`python -m bytewax.run dataflows.promotions`,
  profiles on) at 100k and 1M users, including and excluding process start-up (measured on a
  1-line file, per engine), against a plain Python reference loop and each engine's offline loop
  measured in the same repeats (the engines' jobs interleaved with them); and whether the two
  engines' notifications are identical (count, and the files byte for byte);
* scaling from 1 to 2 processes: the file source (one partition: only one process reads), the same
  flow over 2 files (bench wiring), and the Kafka source over a 4-partition topic;
* bytes of state, in-process (RSS growth): per one-event open session, per open session of the
  benchmark's traffic, and per profile kept after sessions closed; the whole job's RSS;
* the cost of recovery snapshots every 10 s against none, on a dataset long enough for periodic
  snapshots;
* a backlog (years-old timestamps) against the same traffic shifted to end now;
* Kafka to Kafka events/s per process against a real local broker, and logout-to-notification
  latency percentiles at a steady offered load of 10k events/s;
* the Python decode path (`bench.decode_bench`);
* each stage's cost per event in one process, both engines, the kernel without Python
  (`kernel/examples/throughput.rs`), and the memory-latency floors (`bench.stages`).

Backlog against live, Kafka and latency run the kernel engine only (the default).
Each figure is the median of several runs (see "repeats" in the JSON). The machine is noisy, so
ratios to the reference of the same repeat are reported next to absolute figures.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench import datasets, decode_bench, exactly_once, kafka_bench, stages
from bench.common import (
    PY,
    ROOT,
    count_lines,
    file_env,
    log,
    median,
    rate,
    ratio,
    run_job,
    table,
    timed,
)
from bench.reference import offline_core, offline_kernel, reference_loop
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.timefmt import parse_rfc3339_ms
from tests.integration.cluster import committed_epoch

RESULTS = ROOT / "bench" / "results.json"
SNAPSHOT_INTERVAL_S = 10
ENGINES = ("kernel", "python")
DEFAULT_ENGINE = "kernel"
#: A gap longer than any input (ten years, the settings' bound): sessions of the realistic-memory
#: dataset stay open.
NEVER_GAP_MS = 10 * 365 * 86_400_000


class Config:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.events = 100_000 if quick else 1_000_000
        self.fast_repeats = 3  # runs of a few seconds each
        self.slow_repeats = 1 if quick else 3  # recovery, live, scaling, Kafka
        self.core_repeats = 1 if quick else 3  # the Python offline core (tens of seconds at 1M)
        # The Python engine's scaling and snapshot-cost runs (tens of seconds each): one repeat
        # keeps a full run near 25 minutes (three made it 30).
        self.python_repeats = 1
        self.open_sessions = 200_000 if quick else 1_000_000
        self.decode_lines = 50_000 if quick else 100_000
        self.kafka_events = 300_000 if quick else 1_000_000
        # 2-process start-up is ~1.3 s: enough events that it is a small part of each run.
        self.scaling_events = 1_000_000 if quick else 3_000_000
        # Snapshot cost: runs of the kernel engine long enough for periodic snapshots (every 10 s)
        # and not only the final one; the Python engine's runs on the scaling dataset are.
        self.recovery_events = 1_000_000 if quick else 8_000_000
        self.latency_rate = 10_000
        self.latency_window_s = 8 if quick else 20


# -- sections -----------------------------------------------------------------------------------


def _job(path: Path, out: Path, processes: int = 1, module: str = "dataflows.promotions",
         runner: str = "bytewax.run", engine: str = DEFAULT_ENGINE,
         **extra: Any) -> tuple[float, int, int]:
    """(seconds, notifications, peak RSS of process 0) of one run of the job, file to file."""
    results = run_job(file_env(path, out, PROMO_ENGINE=engine, **extra), processes=processes,
                      module=module, runner=runner)
    return max(r.seconds for r in results), count_lines(out), results[0].max_rss_bytes


def _notification_shapes(path: Path, shift_ms: int = 0) -> Counter:
    """Notifications without their ids, with session times moved back by `shift_ms`."""
    shapes: Counter = Counter()
    with path.open("rb") as f:
        for line in f:
            n = orjson.loads(line)
            s = n["session"]
            shapes[(n["user_id"], n["action"], tuple(n["products"]), n["rule"], s["events"],
                    s["close_reason"], parse_rfc3339_ms(s["start"]) - shift_ms,
                    parse_rfc3339_ms(s["end"]) - shift_ms)] += 1
    return shapes


def _same_files(a: Path, b: Path) -> dict[str, Any]:
    """Whether two notification files hold the same lines: in order, and as sorted lines."""
    la, lb = a.read_bytes().splitlines(), b.read_bytes().splitlines()
    return {"kernel_notifications": len(la), "python_notifications": len(lb),
            "same_count": len(la) == len(lb), "byte_identical_sorted": sorted(la) == sorted(lb),
            "byte_identical_in_order": la == lb}


def _alternate(rep: int) -> tuple[str, ...]:
    """The engines in the order of repeat `rep`: alternating, so drifts in load hit both alike."""
    return ENGINES if rep % 2 == 0 else ENGINES[::-1]


def startup(cfg: Config, tmp: Path, one_line: Path) -> dict[str, Any]:
    log("start-up: the job on a 1-line file, both engines")
    one: dict[str, list] = {e: [] for e in ENGINES}
    two: dict[str, list] = {e: [] for e in ENGINES}
    for rep in range(cfg.fast_repeats):
        for engine in _alternate(rep):
            one[engine].append(_job(one_line, tmp / "out-startup.jsonl", engine=engine))
            if rep < cfg.slow_repeats:
                two[engine].append(_job(one_line, tmp / "out-startup2.jsonl", processes=2,
                                        engine=engine))
    return {engine: {
        "one_process_s": round(median(r[0] for r in one[engine]), 3),
        "two_processes_s": round(median(r[0] for r in two[engine]), 3),
        "idle_rss_bytes": int(median(r[2] for r in one[engine])),
    } for engine in ENGINES}


def file_throughput(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any],
                    name: str, live: datasets.Dataset | None = None,
                    shift: int = 0) -> dict[str, Any]:
    """Per repeat: the reference loop, the offline loops (the Python core in the first
    `core_repeats` repeats), the job with each engine (alternating which goes first) and, on the
    live-like copy, the kernel job (in the first `slow_repeats` repeats).

    Interleaved per repeat so that load changes on this shared machine hit every variant alike;
    each engine's ratio to the reference is the median over repeats of the ratio within one.
    """
    ref: list[float] = []
    offline: dict[str, list[float]] = {e: [] for e in ENGINES}
    jobs: dict[str, list[tuple[float, int, int]]] = {e: [] for e in ENGINES}
    livejob: list[tuple[float, int, int]] = []
    offline_n = {e: 0 for e in ENGINES}
    ref_n = 0
    out = {e: tmp / f"out-{name}-{e}.jsonl" for e in ENGINES}
    for rep in range(cfg.fast_repeats):
        log(f"{name}: repeat {rep + 1}/{cfg.fast_repeats}")
        t, ref_n = timed(lambda: reference_loop(data.path), 1)
        ref += t
        if rep < cfg.core_repeats:
            t, offline_n["python"] = timed(lambda: offline_core(data.path), 1)
            offline["python"] += t
        t, offline_n["kernel"] = timed(lambda: offline_kernel(data.path), 1)
        offline["kernel"] += t
        for engine in _alternate(rep):
            jobs[engine].append(_job(data.path, out[engine], engine=engine))
        if live is not None and rep < cfg.slow_repeats:
            livejob.append(_job(live.path, tmp / f"out-{name}-live.jsonl"))
    rows = {}
    for engine in ENGINES:
        b = boot[engine]["one_process_s"]
        runs = [r[0] for r in jobs[engine]]
        job_s = median(runs)
        off_s = median(offline[engine])
        rows[engine] = {
            "engine": engine,
            "lines": data.lines,
            "users": data.users,
            "reference_events_per_s": rate(data.lines, median(ref)),
            "offline_core_events_per_s": rate(data.lines, off_s),
            "job_events_per_s_incl_startup": rate(data.lines, job_s),
            "job_events_per_s_excl_startup": rate(data.lines, job_s - b),
            "job_vs_reference": round(median(ratio(r, j - b) for r, j in zip(ref, runs)), 3),
            "job_vs_reference_incl_startup": round(median(ratio(r, j) for r, j in zip(ref, runs)), 3),
            "offline_core_vs_reference": ratio(median(ref), off_s),
            "framework_us_per_event": round((job_s - b - off_s) / data.lines * 1e6, 3),
            "job_runs_s": [round(r, 2) for r in runs],
            "reference_runs_s": [round(r, 2) for r in ref],
            "startup_s": b,
            "job_peak_rss_bytes": int(median(r[2] for r in jobs[engine])),
            "notifications": jobs[engine][-1][1],
            "offline_core_notifications": offline_n[engine],
            "job_matches_offline_core": jobs[engine][-1][1] == offline_n[engine],
            "reference_decisions": ref_n,
        }
    agree = _same_files(out["kernel"], out["python"])
    agree["python_offline_core_notifications"] = offline_n["python"]
    agree["all_match_specification"] = (
        agree["byte_identical_sorted"] and jobs["kernel"][-1][1] == offline_n["python"]
        and offline_n["kernel"] == offline_n["python"])
    result: dict[str, Any] = {"rows": rows, "engines_agree": agree}
    if live is not None:
        lines = data.lines
        job_s, live_s = median(r[0] for r in jobs["kernel"]), median(r[0] for r in livejob)
        backlog_shapes = _notification_shapes(out["kernel"])
        live_shapes = _notification_shapes(tmp / f"out-{name}-live.jsonl", shift)
        result["backlog_vs_live"] = {
            "engine": DEFAULT_ENGINE,
            "runs": len(livejob),
            "backlog_first_ts": data.first_ts,
            "live_last_ts": live.last_ts,
            "shift_ms": shift,
            "backlog_events_per_s": rate(lines, job_s),
            "live_events_per_s": rate(lines, live_s),
            "live_vs_backlog_speed": ratio(job_s, live_s),
            "backlog_notifications": jobs["kernel"][-1][1],
            "live_notifications": livejob[-1][1],
            "same_output": backlog_shapes == live_shapes,
            "compared": "count, and per notification: user, action, products, rule, events, "
                        "close_reason, start and end (live moved back by the shift); ids differ "
                        "by design (they include the session times)",
        }
    return result


def _repeats(cfg: Config, engine: str) -> int:
    return cfg.python_repeats if engine == "python" else cfg.slow_repeats


def recovery_cost(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any],
                  engine: str) -> dict[str, Any]:
    """The job with a recovery store and a snapshot every 10 s against the job without one, on a
    dataset long enough for the engine that periodic snapshots happen, not only the final one."""
    plain, recovery, epochs = [], [], []
    repeats = _repeats(cfg, engine)
    for rep in range(repeats):
        log(f"recovery snapshots every {SNAPSHOT_INTERVAL_S} s, {engine} engine, "
            f"repeat {rep + 1}/{repeats}")
        plain.append(_job(data.path, tmp / "out-plain.jsonl", engine=engine))
        store = tmp / f"recovery-{engine}-{rep}"
        store.mkdir()
        subprocess.run([PY, "-m", "bytewax.recovery", str(store), "1"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        recovery.append(_job(data.path, tmp / "out-recovery.jsonl", engine=engine,
                             BYTEWAX_RECOVERY_DIRECTORY=store,
                             BYTEWAX_SNAPSHOT_INTERVAL=SNAPSHOT_INTERVAL_S,
                             BYTEWAX_RECOVERY_BACKUP_INTERVAL=0))
        epochs.append(committed_epoch(store))  # the epochs the run went through
        subprocess.run(["rm", "-rf", str(store)], check=False)
    lines, boot_s = data.lines, boot[engine]["one_process_s"]
    job_s, rec_s = median(r[0] for r in plain), median(r[0] for r in recovery)
    return {
        "engine": engine,
        "snapshot_interval_s": SNAPSHOT_INTERVAL_S,
        "runs": repeats,
        "lines": lines,
        "epochs_per_run": epochs,
        "without_runs_s": [round(r[0], 2) for r in plain],
        "with_runs_s": [round(r[0], 2) for r in recovery],
        "without_events_per_s": rate(lines, job_s),
        "with_events_per_s": rate(lines, rec_s),
        "throughput_ratio": ratio(job_s, rec_s),
        "cost_fraction": round(1 - job_s / rec_s, 3),
        "cost_fraction_per_repeat": [round(1 - p[0] / r[0], 3) for p, r in zip(plain, recovery)],
        "without_excl_startup_events_per_s": rate(lines, job_s - boot_s),
        "with_excl_startup_events_per_s": rate(lines, rec_s - boot_s),
        "cost_fraction_excl_startup": round(1 - (job_s - boot_s) / (rec_s - boot_s), 3),
        "same_notification_count": recovery[-1][1] == plain[-1][1],
        "note": ("each run ends in its first epoch: only the final snapshot is measured"
                 if max(epochs) <= 1 else
                 "epochs_per_run - 1 snapshots at the interval, plus the final one"),
    }


def scaling_files(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any],
                  split_dir: Path, engine: str) -> dict[str, Any]:
    """One file (1 partition) on 2 processes, and a directory of 2 files (2 partitions)."""
    one_file_2p, multi_1p, multi_2p = [], [], []
    repeats = _repeats(cfg, engine)
    for rep in range(repeats):
        log(f"file scaling, {engine} engine, repeat {rep + 1}/{repeats}")
        one_file_2p.append(_job(data.path, tmp / "out-2p.jsonl", processes=2, engine=engine))
        multi_1p.append(_job(split_dir, tmp / "out-m1.jsonl", engine=engine))
        multi_2p.append(_job(split_dir, tmp / "out-m2.jsonl", processes=2, engine=engine))
    lines = data.lines
    b1, b2 = boot[engine]["one_process_s"], boot[engine]["two_processes_s"]
    s_1f2p = median(r[0] for r in one_file_2p)
    s_m1 = median(r[0] for r in multi_1p)
    s_m2 = median(r[0] for r in multi_2p)
    return {
        "engine": engine,
        "runs": repeats,
        "lines": lines,
        "single_file_two_processes_events_per_s_per_process": rate(lines, 2 * (s_1f2p - b2)),
        "single_file_two_processes_total_events_per_s": rate(lines, s_1f2p - b2),
        "two_files_one_process_events_per_s": rate(lines, s_m1 - b1),
        "two_files_two_processes_total_events_per_s": rate(lines, s_m2 - b2),
        "two_files_speedup_excl_startup": ratio(s_m1 - b1, s_m2 - b2),
        "two_files_speedup_incl_startup": ratio(s_m1, s_m2),
        "two_files_speedup_per_repeat_excl_startup": [
            ratio(a[0] - b1, b[0] - b2) for a, b in zip(multi_1p, multi_2p)],
        "runs_s": {"one_file_two_processes": [round(r[0], 2) for r in one_file_2p],
                   "two_files_one_process": [round(r[0], 2) for r in multi_1p],
                   "two_files_two_processes": [round(r[0], 2) for r in multi_2p]},
        "same_notifications": multi_1p[-1][1] == multi_2p[-1][1] == one_file_2p[-1][1],
        "notifications": multi_1p[-1][1],
        "note": "a file is one input partition, so with 2 processes only one reads and decodes; "
                "'two files' is PROMO_INPUT=<directory> with one partition per file",
    }


def _memory_run(path: Path, mode: str, engine: str, *flags: str) -> dict[str, Any]:
    proc = subprocess.run([PY, "-m", "bench.memory", mode, str(path), "--engine", engine, *flags],
                          cwd=ROOT, check=True, capture_output=True)
    return orjson.loads(proc.stdout)


def memory(cfg: Config, tmp: Path, one_event: datasets.Dataset, realistic: datasets.Dataset,
           profiles: datasets.Dataset) -> dict[str, Any]:
    """Bytes of in-process state, per engine, each in a fresh interpreter (RSS growth)."""
    out: dict[str, Any] = {
        "one_event_sessions": {
            "open_sessions": one_event.users,
            "input": "one event per user (login / product_view x2 / add_to_cart), all within "
                     "4 min: nothing closes"},
        "realistic_sessions": {
            "open_sessions": realistic.users, "events": realistic.lines,
            "input": "every user's first session of the 100k-user benchmark traffic, up to (not "
                     "including) its logout or first gap, in copies with distinct user ids to "
                     "reach the open count; driven with a gap longer than the input, so nothing "
                     "closes, and the 10 s lateness, so events below the watermark are folded"},
        "profiles": {
            "users": profiles.users,
            "input": "one event per user spread over 100 gaps (about 1% of the users open at a "
                     "time), so sessions close along the way and at the end of input; profiles "
                     "on (30-day TTL): growth / profiles kept, nothing open at the end"},
    }
    for engine in ENGINES:
        log(f"memory: {engine} engine, {one_event.users} one-event sessions")
        out["one_event_sessions"][engine] = _memory_run(one_event.path, "rss", engine)
        log(f"memory: {engine} engine, {realistic.users} realistic sessions")
        out["realistic_sessions"][engine] = _memory_run(realistic.path, "rss", engine,
                                                        "--gap-ms", str(NEVER_GAP_MS))
        log(f"memory: {engine} engine, {profiles.users} profiles")
        out["profiles"][engine] = _memory_run(profiles.path, "rss", engine, "--eof")
    log(f"memory: python engine, tracemalloc, {one_event.users} one-event sessions")
    out["one_event_sessions"]["python_tracemalloc"] = _memory_run(one_event.path, "tracemalloc",
                                                                  "python")
    for key, field in (("one_event_sessions", "bytes_per_open_session"),
                       ("realistic_sessions", "bytes_per_open_session"),
                       ("profiles", "bytes_per_profile")):
        for engine in ENGINES:
            out[key][f"{field}_{engine}"] = out[key][engine][field]
    return out


def decode(cfg: Config, tmp: Path, backlog: datasets.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"lines": cfg.decode_lines, "runs": cfg.slow_repeats,
                           "engine": "python (promotion.decoding / routing)"}
    lines = decode_bench.read_lines(backlog.path)[: cfg.decode_lines]
    log("decode: epoch-ms timestamps")
    out["epoch_ms"] = decode_bench.measure(lines, cfg.slow_repeats)
    mixed = tmp / "mixed.jsonl"
    write_jsonl(mixed, GeneratorConfig(seed=1, users=100_000, events=cfg.decode_lines,
                                       rate_per_s=2_000, max_disorder_ms=2_000, duplicate_rate=0.01,
                                       bad_rate=0.005, ts_format="mixed"))
    log("decode: mixed timestamps, 0.5 % bad records")
    out["mixed_ts"] = decode_bench.measure(decode_bench.read_lines(mixed), cfg.slow_repeats)
    out["note"] = "mixed: half epoch ms, half RFC 3339 (+00:00, Z, other offsets)"
    return out


def stage_costs(cfg: Config, backlog: datasets.Dataset) -> dict[str, Any]:
    log("stages: µs per event of each stage in one process, both engines, the kernel without "
        "Python, and the memory-latency floors")
    return stages.measure(decode_bench.read_lines(backlog.path), cfg.slow_repeats, backlog.path)


def kafka(cfg: Config, tmp: Path, source: datasets.Dataset, open_users: datasets.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": cfg.slow_repeats}
    with kafka_bench.local_broker() as bootstrap:
        topics = kafka_bench.Topics(bootstrap)
        half = datasets.head(tmp, source, source.lines // 2)
        input_topic, half_topic = topics.create("in", 4), topics.create("in-half", 4)
        log(f"kafka: producing {source.lines} + {half.lines} records (4 partitions each)")
        began = time.perf_counter()
        produced = kafka_bench.produce_file(bootstrap, input_topic, source.path)
        out["produce_events_per_s"] = rate(produced, time.perf_counter() - began)
        kafka_bench.produce_file(bootstrap, half_topic, half.path)
        tiny = topics.create("in-tiny", 4)
        with source.path.open("rb") as f:
            kafka_bench.produce_one_per_partition(bootstrap, tiny, f.readline().rstrip(b"\n"), 4)
        runs: dict[str, list[kafka_bench.KafkaRun]] = {"h1": [], "f1": [], "h2": [], "f2": []}
        for rep in range(cfg.slow_repeats):
            log(f"kafka: throughput, repeat {rep + 1}/{cfg.slow_repeats}")
            for processes in (1, 2):
                runs[f"h{processes}"].append(kafka_bench.run_to_end(bootstrap, topics, half_topic, processes))
                runs[f"f{processes}"].append(kafka_bench.run_to_end(bootstrap, topics, input_topic, processes))
        extra = produced - half.lines
        # Differential: the second half's records over the extra time of the full run, per repeat.
        r1 = median(extra / max(f.seconds - h.seconds, 1e-3) for h, f in zip(runs["h1"], runs["f1"]))
        r2 = median(extra / max(f.seconds - h.seconds, 1e-3) for h, f in zip(runs["h2"], runs["f2"]))
        s1, s2 = median(r.seconds for r in runs["f1"]), median(r.seconds for r in runs["f2"])
        core_n = offline_core(source.path)
        out.update({
            "input_partitions": 4,
            "events": produced,
            "fixed_cost_one_process_s": round(s1 - produced / r1, 2),
            "fixed_cost_two_processes_s": round(s2 - produced / r2, 2),
            "one_process_events_per_s_incl_startup": rate(produced, s1),
            "one_process_events_per_s_excl_startup": round(r1),
            "two_processes_total_events_per_s_excl_startup": round(r2),
            "two_processes_per_process_events_per_s_excl_startup": round(r2 / 2),
            "two_processes_total_events_per_s_incl_startup": rate(produced, s2),
            "two_process_speedup_excl_startup": ratio(r2, r1),
            "two_process_speedup_incl_startup": ratio(s1, s2),
            "notifications_one_process": runs["f1"][-1].notifications,
            "notifications_two_processes": runs["f2"][-1].notifications,
            "offline_core_notifications": core_n,
            "matches_offline_core": runs["f1"][-1].notifications == runs["f2"][-1].notifications == core_n,
            "job_cpu_s_one_process": round(median(r.cpu_seconds for r in runs["f1"]), 1),
            "differential_s": {
                "one_process": [round(f.seconds - h.seconds, 2) for h, f in zip(runs["h1"], runs["f1"])],
                "two_processes": [round(f.seconds - h.seconds, 2) for h, f in zip(runs["h2"], runs["f2"])]},
            "note": "excluding start-up = differential: (N - N/2) records / (time(N) - time(N/2)), "
                    "same topic layout, so every fixed cost (start-up, partition discovery, end of "
                    "input, shut-down) cancels; the broker runs on the same 2 cores as the job "
                    "processes",
        })
        log(f"kafka: job RSS with {open_users.users} open sessions")
        opened = topics.create("open", 4)
        kafka_bench.produce_file(bootstrap, opened, open_users.path)
        idle = kafka_bench.job_rss_when_idle(bootstrap, topics, tiny)
        full = kafka_bench.job_rss_when_idle(bootstrap, topics, opened)
        out["job_memory"] = {
            "job_idle_rss_bytes": idle["rss_bytes"],
            "job_rss_bytes": full["rss_bytes"],
            "job_bytes_per_open_session": round(
                (full["rss_bytes"] - idle["rss_bytes"]) / open_users.users),
            "job_note": "whole job process (Kafka source, no end of input, so sessions stay open), "
                        "RSS once it has read everything and gone idle, minus the same job's idle "
                        "RSS on a 4-record topic; includes epoch snapshots' allocator leftovers",
        }
        # No duplicates: a re-sent logout would get a new ts and look like a second logout.
        template = datasets.traffic(tmp, 50_000, cfg.latency_rate * (cfg.latency_window_s + 30),
                                    name="latency-template.jsonl", duplicate_rate=0.0)
        runs = []
        for rep in range(cfg.slow_repeats):
            log(f"kafka: latency at {cfg.latency_rate} events/s for {cfg.latency_window_s} s, "
                f"repeat {rep + 1}/{cfg.slow_repeats}")
            runs.append(kafka_bench.latency(bootstrap, topics, template.path, cfg.latency_rate,
                                            cfg.latency_window_s, rules=_latency_rules(tmp)).__dict__)
        out["latency"] = {
            **{key: median(r[key] for r in runs) for key in
               ("p50_ms", "p90_ms", "p99_ms", "max_ms", "to_output_p50_ms", "to_output_p99_ms",
                "offered_per_s", "job_cpu_share")},
            "matched": sum(r["matched"] for r in runs),
            "unmatched": sum(r["unmatched"] for r in runs),
            "window_s": cfg.latency_window_s,
            "allowed_lateness_s": 0,
            "input_partitions": 2,
            "runs": runs,
            "note": "median over runs of each run's percentile; latency = logout produce() to the "
                    "notification's arrival at a consumer; to_output = logout produce() to the "
                    "job's produce() of the notification (Kafka CreateTime); rules: the default "
                    "rules plus a last rule so that every logout-closed session notifies",
        }
        log("kafka: exactly-once on and off (resume after kill -9, latency)")
        out["exactly_once"] = exactly_once.measure(bootstrap, topics, input_topic, template.path,
                                                   _latency_rules(tmp), cfg.latency_rate,
                                                   cfg.latency_window_s)
    return out


def _latency_rules(tmp: Path) -> Path:
    """The default rules plus a last rule so that every logout-closed session notifies."""
    from promotion.rules import DEFAULT_RULES_PATH

    text = DEFAULT_RULES_PATH.read_text()
    text = text.replace('version: "default-1"', 'version: "default-1-bench-latency"')
    text += ("  - name: bench-every-logout\n"
             "    description: \"Benchmark only: every session ended by a logout notifies.\"\n"
             "    when: {fact: close_reason, op: \"==\", value: logout}\n"
             "    action: STOP_PROMOTION\n")
    path = tmp / "latency-rules.yaml"
    path.write_text(text)
    return path


# -- report -------------------------------------------------------------------------------------


def targets(r: dict[str, Any]) -> dict[str, Any]:
    """Each target against the kernel engine (the default), with the Python engine's figure."""
    f100, f100p = r["file_100k_users"], r["file_100k_users_python"]
    f1m, f1mp = r["file_1m_users"], r["file_1m_users_python"]
    sc, scp = r["scaling_files"], r.get("scaling_files_python") or {}
    rec, recp = r["recovery"], r.get("recovery_python") or {}
    mem = r["memory"]
    k, lat = r["kafka"], r["kafka"]["latency"]
    one = mem["one_event_sessions"]
    real = mem["realistic_sessions"]
    prof = mem["profiles"]
    rows = {
        "file_100k_users_events_per_s_per_process": (
            ">= 500000 (excl. start-up, profiles on)", f100["job_events_per_s_excl_startup"],
            f100p["job_events_per_s_excl_startup"], lambda v: v >= 500_000),
        "file_1m_users_events_per_s_per_process": (
            ">= 400000 (excl. start-up, profiles on)", f1m["job_events_per_s_excl_startup"],
            f1mp["job_events_per_s_excl_startup"], lambda v: v >= 400_000),
        "file_100k_users_vs_reference": (
            ">= 1.0x the reference loop of the same repeat (excl. start-up)",
            f100["job_vs_reference"], f100p["job_vs_reference"], lambda v: v >= 1.0),
        "file_1m_users_vs_reference": (
            ">= 1.0x the reference loop of the same repeat (excl. start-up)",
            f1m["job_vs_reference"], f1mp["job_vs_reference"], lambda v: v >= 1.0),
        "kafka_events_per_s_per_process": (
            ">= 250000 (Kafka to Kafka, excl. start-up)", k["one_process_events_per_s_excl_startup"],
            None, lambda v: v >= 250_000),
        "two_process_speedup": (
            ">= 1.7 (2 processes on two input files, excl. start-up)",
            sc["two_files_speedup_excl_startup"], scp.get("two_files_speedup_excl_startup"),
            lambda v: v >= 1.7),
        "bytes_per_one_event_session": (
            "<= 150 (RSS growth / open sessions, 1M open)", one["bytes_per_open_session_kernel"],
            one["bytes_per_open_session_python"], lambda v: v <= 150),
        "bytes_per_realistic_session": (
            "<= 600 (RSS growth / open sessions of the benchmark's traffic)",
            real["bytes_per_open_session_kernel"], real["bytes_per_open_session_python"],
            lambda v: v <= 600),
        "bytes_per_kept_profile": (
            "<= 150 (RSS growth / profiles kept)", prof["bytes_per_profile_kernel"],
            prof["bytes_per_profile_python"], lambda v: v <= 150),
        "snapshot_cost_fraction": (
            "<= 0.10 (snapshots every 10 s vs none)", rec["cost_fraction"],
            recp.get("cost_fraction"), lambda v: v <= 0.10),
        "p99_logout_to_notification_ms": (
            "<= 100 at 10k events/s", lat["p99_ms"], None,
            lambda v: not math.isnan(v) and v <= 100),
    }
    out = {}
    for name, (target, value, python, met) in rows.items():
        out[name] = {"target": target, "engine": DEFAULT_ENGINE, "value": value,
                     "met": bool(met(value)), "python_value": python,
                     "python_met": None if python is None else bool(met(python))}
    return out


def print_table(r: dict[str, Any]) -> None:
    f100, f1m, f100p, f1mp = (r["file_100k_users"], r["file_1m_users"],
                              r["file_100k_users_python"], r["file_1m_users_python"])
    rec, recp = r["recovery"], r.get("recovery_python")
    sc, scp = r["scaling_files"], r.get("scaling_files_python")
    live, mem, boot = r["backlog_vs_live"], r["memory"], r["startup"]
    k, lat, dec = r["kafka"], r["kafka"]["latency"], r["decode"]
    st, floor = r["stages"]["us_per_event"], r["stages"]["floors_us_per_event"]
    kst = r["stages"].get("kernel", {})
    agree = r["engines_agree"]
    one, real, prof = mem["one_event_sessions"], mem["realistic_sessions"], mem["profiles"]
    dash = "-"

    def n(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) else str(v)

    def same(a: dict[str, Any]) -> str:
        return (f"{'identical' if a['byte_identical_sorted'] else 'DIFFER'} "
                f"({a['kernel_notifications']:,})")

    rows = [
        ("figure", "kernel", "python", "note", "target (kernel)"),
        ("file 100k users, ev/s/process", n(f100["job_events_per_s_excl_startup"]),
         n(f100p["job_events_per_s_excl_startup"]),
         f"excl. start-up; incl. {n(f100['job_events_per_s_incl_startup'])} / "
         f"{n(f100p['job_events_per_s_incl_startup'])}",
         _mark(r, "file_100k_users_events_per_s_per_process")),
        ("file 100k users, vs reference", f"{f100['job_vs_reference']}x",
         f"{f100p['job_vs_reference']}x", f"reference {n(f100['reference_events_per_s'])}/s, "
         f"same repeat", _mark(r, "file_100k_users_vs_reference")),
        ("file 1M users, ev/s/process", n(f1m["job_events_per_s_excl_startup"]),
         n(f1mp["job_events_per_s_excl_startup"]),
         f"excl. start-up; incl. {n(f1m['job_events_per_s_incl_startup'])} / "
         f"{n(f1mp['job_events_per_s_incl_startup'])}",
         _mark(r, "file_1m_users_events_per_s_per_process")),
        ("file 1M users, vs reference", f"{f1m['job_vs_reference']}x",
         f"{f1mp['job_vs_reference']}x", f"reference {n(f1m['reference_events_per_s'])}/s, "
         f"same repeat", _mark(r, "file_1m_users_vs_reference")),
        ("offline loop 100k / 1M users", f"{n(f100['offline_core_events_per_s'])} / "
         f"{n(f1m['offline_core_events_per_s'])}", f"{n(f100p['offline_core_events_per_s'])} / "
         f"{n(f1mp['offline_core_events_per_s'])}", "engine's pieces in one loop, no Bytewax", ""),
        ("job minus offline, µs/event", f"{f100['framework_us_per_event']} / "
         f"{f1m['framework_us_per_event']}", f"{f100p['framework_us_per_event']} / "
         f"{f1mp['framework_us_per_event']}", "100k / 1M users: Bytewax, I/O, metrics", ""),
        ("notifications, both engines", same(agree["file_100k_users"]),
         same(agree["file_1m_users"]), "100k users | 1M users: sorted files byte for byte; "
         f"in order: {agree['file_100k_users']['byte_identical_in_order']} / "
         f"{agree['file_1m_users']['byte_identical_in_order']}", ""),
        ("start-up, 1 / 2 processes", f"{boot['kernel']['one_process_s']} / "
         f"{boot['kernel']['two_processes_s']} s", f"{boot['python']['one_process_s']} / "
         f"{boot['python']['two_processes_s']} s", "job on a 1-line file", ""),
        ("2 processes, 2 files (dir input)", f"{sc['two_files_speedup_excl_startup']}x",
         f"{scp['two_files_speedup_excl_startup']}x" if scp else dash,
         f"{sc['lines']:,} lines; incl. start-up {sc['two_files_speedup_incl_startup']}x",
         _mark(r, "two_process_speedup")),
        ("1 file, 2 processes, total ev/s", n(sc["single_file_two_processes_total_events_per_s"]),
         n(scp["single_file_two_processes_total_events_per_s"]) if scp else dash,
         "one partition: only one process reads", ""),
        ("bytes per one-event session", n(one["bytes_per_open_session_kernel"]),
         n(one["bytes_per_open_session_python"]),
         f"{one['open_sessions']:,} open; python tracemalloc "
         f"{one['python_tracemalloc']['bytes_per_open_session']}; whole job (kernel) "
         f"{mem.get('job_bytes_per_open_session', dash)}", _mark(r, "bytes_per_one_event_session")),
        ("bytes per realistic session", n(real["bytes_per_open_session_kernel"]),
         n(real["bytes_per_open_session_python"]),
         f"{real['open_sessions']:,} open, {real['events'] / max(real['open_sessions'], 1):.1f} "
         f"events each", _mark(r, "bytes_per_realistic_session")),
        ("bytes per kept profile", n(prof["bytes_per_profile_kernel"]),
         n(prof["bytes_per_profile_python"]),
         f"{prof['kernel']['profiles']:,} profiles, no session open",
         _mark(r, "bytes_per_kept_profile")),
        ("snapshots every 10 s, cost", f"{rec['cost_fraction']:.1%}",
         f"{recp['cost_fraction']:.1%}" if recp else dash,
         f"{rec['lines']:,} / {recp['lines'] if recp else 0:,} lines, epochs "
         f"{rec['epochs_per_run']} / {recp['epochs_per_run'] if recp else dash}",
         _mark(r, "snapshot_cost_fraction")),
        ("backlog vs live-like", f"speed {live['live_vs_backlog_speed']}x", dash,
         f"same output: {live['same_output']} ({live['live_notifications']:,} notifications)", ""),
        ("Kafka->Kafka ev/s/process", n(k["one_process_events_per_s_excl_startup"]), dash,
         f"incl. start-up {n(k['one_process_events_per_s_incl_startup'])}",
         _mark(r, "kafka_events_per_s_per_process")),
        ("Kafka, 2 processes, 4 partitions", f"{k['two_process_speedup_excl_startup']}x", dash,
         f"incl. start-up {k['two_process_speedup_incl_startup']}x; broker on the same cores", ""),
        ("logout->notification p50/p99", f"{lat['p50_ms']} / {lat['p99_ms']} ms", dash,
         f"{lat['matched']} logouts at {n(lat['offered_per_s'])} ev/s offered",
         _mark(r, "p99_logout_to_notification_ms")),
        ("decode_batch ev/s (epoch / mixed)", dash,
         f"{n(dec['epoch_ms']['decode_batch_events_per_s'])} / "
         f"{n(dec['mixed_ts']['decode_batch_events_per_s'])}", "Python decoder alone", ""),
        ("stages, µs/event (100k users)", f"{kst['us_per_event']['sum_of_stages']}"
         if kst.get("us_per_event") else dash, f"{st['sum_of_stages']}", _stage_note(st, kst),
         "500k/s is 2 µs/event"),
        ("kernel without Python, µs/event", _rust(kst), dash,
         "kernel/examples/throughput.rs: decode + sessions (no profiles, rules, output)", ""),
        ("one pass over held events, µs/event", dash, f"{floor['one_pass_grouped_by_user']}",
         f"by user; in arrival order {floor['one_pass_arrival_order']}", "memory latency"),
    ]
    print(table(rows), flush=True)


def _stage_note(st: dict[str, Any], kst: dict[str, Any]) -> str:
    py = (f"py: decode {st['decode_validate_split']}, sessions {st['sessions_and_closing']}, "
          f"output {st['rules_and_notifications']}")
    if not kst.get("us_per_event"):
        return py
    k = kst["us_per_event"]
    return (f"kernel: decode+split {k['decode_split']}, shard step {k['shard_step']}, wrapping "
            f"{k['python_wrapping']}; {py}")


def _rust(kst: dict[str, Any]) -> str:
    ex = kst.get("rust_example") or {}
    if "sum_us_per_event" not in ex:
        return ex.get("skipped", "-")[:40]
    return f"{ex['decode_us_per_event']} + {ex['sessions_us_per_event']}"


def _mark(r: dict[str, Any], name: str) -> str:
    t = r["targets"][name]
    python = "" if t["python_met"] is None else f" (python: {'met' if t['python_met'] else 'not'})"
    return f"{t['target']}: {'met' if t['met'] else 'NOT met'}{python}"


def _long_enough(tmp: Path, scaling: datasets.Dataset, events_per_s: int, seconds: float,
                 cap: int) -> datasets.Dataset:
    """The scaling dataset, or a longer one (repeated in event time) so that a kernel run takes
    about `seconds`: enough for periodic snapshots every 10 s."""
    wanted = min(cap, int(events_per_s * seconds))
    if wanted <= scaling.lines:
        return scaling
    times = math.ceil(wanted / scaling.lines)
    log(f"recovery dataset: the scaling dataset {times} times over in event time "
        f"({times * scaling.lines:,} lines)")
    return datasets.repeated(tmp, scaling, times)


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    cfg = Config(quick)
    if not stages.kernel_available():
        raise SystemExit("bench: the kernel (promotions_kernel) is not installed; `make kernel`")
    # Sections that run one engine run the default one, whatever the caller's environment says.
    os.environ["PROMO_ENGINE"] = DEFAULT_ENGINE
    began = time.perf_counter()
    r: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "events": cfg.events,
        "engines": {"compared": list(ENGINES), "default": DEFAULT_ENGINE,
                    "note": "`file_*`, `scaling_files`, `recovery`: the kernel; `*_python`: the "
                            "Python engine on the same input in the same run; memory and stages "
                            "hold both; backlog_vs_live and kafka: the kernel only"},
        "repeats": {"fast": cfg.fast_repeats, "slow": cfg.slow_repeats,
                    "offline_core": cfg.core_repeats, "python_scaling_and_recovery": cfg.python_repeats,
                    "note": "figures are medians over the repeats"},
    }
    with tempfile.TemporaryDirectory(prefix="promotions-bench-") as tmp_name:
        tmp = Path(tmp_name)
        log(f"generating {cfg.events} events for 100k and 1M users")
        backlog = datasets.traffic(tmp, 100_000, cfg.events)
        live, shift = datasets.shifted_to_now(tmp, backlog)
        big = datasets.traffic(tmp, 1_000_000, cfg.events)
        one_line = datasets.one_line(tmp, backlog)
        r["decode"] = decode(cfg, tmp, backlog)
        r["stages"] = stage_costs(cfg, backlog)
        r["startup"] = boot = startup(cfg, tmp, one_line.path)
        hundred_k = file_throughput(cfg, tmp, backlog, boot, "file_100k_users", live, shift)
        r["file_100k_users"] = hundred_k["rows"]["kernel"]
        r["file_100k_users_python"] = hundred_k["rows"]["python"]
        r["backlog_vs_live"] = hundred_k["backlog_vs_live"]
        r["engines_agree"] = {"file_100k_users": hundred_k["engines_agree"]}
        million = file_throughput(cfg, tmp, big, boot, "file_1m_users")
        r["file_1m_users"] = million["rows"]["kernel"]
        r["file_1m_users_python"] = million["rows"]["python"]
        r["engines_agree"]["file_1m_users"] = million["engines_agree"]
        big.path.unlink()
        live.path.unlink()
        scaling_source = backlog if cfg.scaling_events == backlog.events else datasets.traffic(
            tmp, 100_000, cfg.scaling_events)
        split_dir = tmp / "split"
        split_dir.mkdir()
        datasets.split(split_dir, scaling_source, 2)
        r["scaling_files"] = scaling_files(cfg, tmp, scaling_source, boot, split_dir, "kernel")
        r["scaling_files_python"] = scaling_files(cfg, tmp, scaling_source, boot, split_dir, "python")
        r["engines_agree"]["scaling_files_notifications"] = (
            r["scaling_files"]["notifications"] == r["scaling_files_python"]["notifications"])
        long_source = _long_enough(tmp, scaling_source, r["file_100k_users"]["job_events_per_s_incl_startup"],
                                   30, cfg.recovery_events)
        r["recovery"] = recovery_cost(cfg, tmp, long_source, boot, "kernel")
        if long_source is not scaling_source:
            long_source.path.unlink()
        r["recovery_python"] = recovery_cost(cfg, tmp, scaling_source, boot, "python")
        for path in split_dir.iterdir():
            path.unlink()
        open_users = datasets.one_event_per_user(tmp, cfg.open_sessions)
        realistic = datasets.realistic_open(tmp, backlog, cfg.open_sessions)
        profiled = datasets.one_event_per_user(tmp, cfg.open_sessions, span_ms=100 * 300_000,
                                               name=f"profiles-{cfg.open_sessions}u.jsonl")
        r["memory"] = memory(cfg, tmp, open_users, realistic, profiled)
        realistic.path.unlink()
        profiled.path.unlink()
        kafka_source = {d.events: d for d in (backlog, scaling_source)}.get(cfg.kafka_events) or \
            datasets.traffic(tmp, 100_000, cfg.kafka_events)
        r["kafka"] = kafka(cfg, tmp, kafka_source, open_users)
        r["memory"].update(r["kafka"].pop("job_memory"))
    r["targets"] = targets(r)
    r["duration_s"] = round(time.perf_counter() - began, 1)
    RESULTS.write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nsession-promotions benchmark ({r['mode']}, {r['cpus']} CPUs, Python {r['python']}, "
          f"{r['duration_s']} s)")
    print_table(r)
    print(f"wrote {RESULTS}")
    if quick:
        print(f"quick mode: {cfg.events:,} events per dataset ({cfg.scaling_events:,} for scaling, "
              f"{cfg.kafka_events:,} for Kafka), slow figures from 1 run", file=sys.stderr)


if __name__ == "__main__":
    main()
