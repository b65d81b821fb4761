"""Benchmark of session-promotions (`make bench`; `BENCH_QUICK=1` for a run of a minute or two).

Measures, and writes to `bench/results.json`:
* file to file events/s per process of the full job (`python -m bytewax.run dataflows.promotions`)
  at 100k and 1M users, including and excluding process start-up (measured on a 1-line file),
  against a plain Python reference loop and the offline core measured in the same run;
* scaling from 1 to 2 processes: the file source (one partition: only one process reads), the same
  flow over 2 files (bench wiring), and the Kafka source over a 4-partition topic;
* bytes per open session (in-process RSS and tracemalloc; full-process peak RSS);
* the cost of recovery snapshots every 10 s against none (on the scaling dataset: long enough
  for periodic snapshots in a full run);
* a backlog (years-old timestamps) against the same traffic shifted to end now;
* Kafka to Kafka events/s per process against a real local broker, and logout-to-notification
  latency percentiles at a steady offered load of 10k events/s;
* the decode path before/after its speed-ups (`bench.decode_bench`);
* each stage's cost per event in one process, and the memory-latency floors (`bench.stages`).

Each figure is the median of several runs (see "repeats" in the JSON). The machine is noisy, so
ratios to the reference of the same run are reported next to absolute figures.
"""

from __future__ import annotations

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

from bench import datasets, decode_bench, kafka_bench, stages
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
from bench.reference import offline_core, reference_loop
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.timefmt import parse_rfc3339_ms
from tests.integration.cluster import committed_epoch

RESULTS = ROOT / "bench" / "results.json"
SNAPSHOT_INTERVAL_S = 10


class Config:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.events = 100_000 if quick else 1_000_000
        self.fast_repeats = 3  # runs of a few seconds each
        self.slow_repeats = 1 if quick else 3  # recovery, live, scaling, Kafka
        self.core_repeats = 1 if quick else 3  # the offline core (tens of seconds at 1M)
        self.open_sessions = 200_000 if quick else 1_000_000
        self.decode_lines = 50_000 if quick else 100_000
        self.kafka_events = 300_000 if quick else 1_000_000
        # 2-process start-up is ~1.3 s: enough events that it is a small part of each run.
        self.scaling_events = 1_000_000 if quick else 3_000_000
        self.latency_rate = 10_000
        self.latency_window_s = 8 if quick else 20


# -- sections -----------------------------------------------------------------------------------


def _job(path: Path, out: Path, processes: int = 1, module: str = "dataflows.promotions",
         runner: str = "bytewax.run", **extra: Any) -> tuple[float, int, int]:
    """(seconds, notifications, peak RSS of process 0) of one run of the job, file to file."""
    results = run_job(file_env(path, out, **extra), processes=processes, module=module,
                      runner=runner)
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


def startup(cfg: Config, tmp: Path, one_line: Path) -> dict[str, Any]:
    log("start-up: the job on a 1-line file")
    runs = [_job(one_line, tmp / "out-startup.jsonl") for _ in range(cfg.fast_repeats)]
    runs2 = [_job(one_line, tmp / "out-startup2.jsonl", processes=2) for _ in range(cfg.slow_repeats)]
    return {
        "one_process_s": round(median(r[0] for r in runs), 3),
        "two_processes_s": round(median(r[0] for r in runs2), 3),
        "idle_rss_bytes": int(median(r[2] for r in runs)),
    }


def _baselines_and_job(cfg: Config, rep: int, path: Path, out: Path, ref: list, core: list,
                       plain: list, core_n: int) -> tuple[int, int]:
    """One repeat: the reference loop, the offline core (in the first `core_repeats` repeats)
    and the job, each appended to its list. Returns the reference's and the core's counts."""
    t, ref_n = timed(lambda: reference_loop(path), 1)
    ref += t
    if rep < cfg.core_repeats:
        t, core_n = timed(lambda: offline_core(path), 1)
        core += t
    plain.append(_job(path, out))
    return ref_n, core_n


def throughput_100k(cfg: Config, tmp: Path, backlog: datasets.Dataset, live: datasets.Dataset,
                    shift: int, boot: dict[str, Any]) -> dict[str, Any]:
    """100k users: reference, offline core, job (backlog), job live-like.

    Interleaved per repeat so that load changes on this shared machine hit every variant alike.
    """
    ref, core, plain, livejob = [], [], [], []
    ref_n = core_n = 0
    for rep in range(cfg.fast_repeats):
        log(f"100k users, repeat {rep + 1}/{cfg.fast_repeats}")
        ref_n, core_n = _baselines_and_job(cfg, rep, backlog.path, tmp / "out-backlog.jsonl",
                                           ref, core, plain, core_n)
        if rep < cfg.slow_repeats:
            livejob.append(_job(live.path, tmp / "out-live.jsonl"))
    lines = backlog.lines
    boot_s = boot["one_process_s"]
    job_s = median(r[0] for r in plain)
    row = _throughput_row(lines, median(ref), median(core), job_s, boot_s, ref_n, core_n,
                          plain[-1][1], int(median(r[2] for r in plain)), [r[0] for r in plain])
    live_s = median(r[0] for r in livejob)
    backlog_shapes = _notification_shapes(tmp / "out-backlog.jsonl")
    live_shapes = _notification_shapes(tmp / "out-live.jsonl", shift)
    return {
        "throughput": row,
        "backlog_vs_live": {
            "runs": len(livejob),
            "backlog_first_ts": backlog.first_ts,
            "live_last_ts": live.last_ts,
            "shift_ms": shift,
            "backlog_events_per_s": rate(lines, job_s),
            "live_events_per_s": rate(lines, live_s),
            "live_vs_backlog_speed": ratio(job_s, live_s),
            "backlog_notifications": plain[-1][1],
            "live_notifications": livejob[-1][1],
            "same_output": backlog_shapes == live_shapes,
            "compared": "count, and per notification: user, action, products, rule, events, "
                        "close_reason, start and end (live moved back by the shift); ids differ "
                        "by design (they include the session times)",
        },
    }


def _throughput_row(lines: int, ref_s: float, core_s: float, job_s: float, boot_s: float,
                    ref_n: int, core_n: int, job_n: int, rss: int, runs: list[float]) -> dict[str, Any]:
    return {
        "lines": lines,
        "reference_events_per_s": rate(lines, ref_s),
        "offline_core_events_per_s": rate(lines, core_s),
        "job_events_per_s_incl_startup": rate(lines, job_s),
        "job_events_per_s_excl_startup": rate(lines, job_s - boot_s),
        "job_vs_reference": ratio(ref_s, job_s - boot_s),
        "offline_core_vs_reference": ratio(ref_s, core_s),
        "job_runs_s": [round(r, 2) for r in runs],
        "job_peak_rss_bytes": rss,
        "notifications": job_n,
        "offline_core_notifications": core_n,
        "job_matches_offline_core": job_n == core_n,
        "reference_decisions": ref_n,
    }


def throughput_1m(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any]) -> dict[str, Any]:
    ref, core, plain = [], [], []
    ref_n = core_n = 0
    for rep in range(cfg.fast_repeats):
        log(f"1M users, repeat {rep + 1}/{cfg.fast_repeats}")
        ref_n, core_n = _baselines_and_job(cfg, rep, data.path, tmp / "out-1m.jsonl",
                                           ref, core, plain, core_n)
    job_s = median(r[0] for r in plain)
    row = _throughput_row(data.lines, median(ref), median(core), job_s, boot["one_process_s"],
                          ref_n, core_n, plain[-1][1], int(median(r[2] for r in plain)),
                          [r[0] for r in plain])
    return row


def recovery_cost(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any]) -> dict[str, Any]:
    """The job with a recovery store and a snapshot every 10 s against the job without one, on
    the longer (scaling) dataset so that periodic snapshots happen, not only the final one."""
    plain, recovery, epochs = [], [], []
    for rep in range(cfg.slow_repeats):
        log(f"recovery snapshots every {SNAPSHOT_INTERVAL_S} s, repeat {rep + 1}/{cfg.slow_repeats}")
        plain.append(_job(data.path, tmp / "out-plain.jsonl"))
        store = tmp / f"recovery-{rep}"
        store.mkdir()
        subprocess.run([PY, "-m", "bytewax.recovery", str(store), "1"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        recovery.append(_job(data.path, tmp / "out-recovery.jsonl",
                             BYTEWAX_RECOVERY_DIRECTORY=store,
                             BYTEWAX_SNAPSHOT_INTERVAL=SNAPSHOT_INTERVAL_S,
                             BYTEWAX_RECOVERY_BACKUP_INTERVAL=0))
        epochs.append(committed_epoch(store))  # the epochs the run went through
    lines, boot_s = data.lines, boot["one_process_s"]
    job_s, rec_s = median(r[0] for r in plain), median(r[0] for r in recovery)
    return {
        "snapshot_interval_s": SNAPSHOT_INTERVAL_S,
        "runs": cfg.slow_repeats,
        "lines": lines,
        "epochs_per_run": epochs,
        "without_events_per_s": rate(lines, job_s),
        "with_events_per_s": rate(lines, rec_s),
        "throughput_ratio": ratio(job_s, rec_s),
        "cost_fraction": round(1 - job_s / rec_s, 3),
        "without_excl_startup_events_per_s": rate(lines, job_s - boot_s),
        "with_excl_startup_events_per_s": rate(lines, rec_s - boot_s),
        "cost_fraction_excl_startup": round(1 - (job_s - boot_s) / (rec_s - boot_s), 3),
        "same_notification_count": recovery[-1][1] == plain[-1][1],
        "note": ("each run ends in its first epoch: only the final snapshot is measured"
                 if max(epochs) <= 1 else
                 "epochs_per_run - 1 snapshots at the interval, plus the final one"),
    }


def scaling_files(cfg: Config, tmp: Path, data: datasets.Dataset, boot: dict[str, Any]) -> dict[str, Any]:
    """One file (1 partition) on 2 processes, and a directory of 2 files (2 partitions)."""
    split_dir = tmp / "split"
    split_dir.mkdir(exist_ok=True)
    datasets.split(split_dir, data, 2)
    one_file_2p, multi_1p, multi_2p = [], [], []
    for rep in range(cfg.slow_repeats):
        log(f"file scaling, repeat {rep + 1}/{cfg.slow_repeats}")
        one_file_2p.append(_job(data.path, tmp / "out-2p.jsonl", processes=2))
        multi_1p.append(_job(split_dir, tmp / "out-m1.jsonl"))
        multi_2p.append(_job(split_dir, tmp / "out-m2.jsonl", processes=2))
    lines = data.lines
    b1, b2 = boot["one_process_s"], boot["two_processes_s"]
    s_1f2p = median(r[0] for r in one_file_2p)
    s_m1 = median(r[0] for r in multi_1p)
    s_m2 = median(r[0] for r in multi_2p)
    return {
        "runs": cfg.slow_repeats,
        "lines": lines,
        "single_file_two_processes_events_per_s_per_process": rate(lines, 2 * (s_1f2p - b2)),
        "single_file_two_processes_total_events_per_s": rate(lines, s_1f2p - b2),
        "two_files_one_process_events_per_s": rate(lines, s_m1 - b1),
        "two_files_two_processes_total_events_per_s": rate(lines, s_m2 - b2),
        "two_files_speedup_excl_startup": ratio(s_m1 - b1, s_m2 - b2),
        "two_files_speedup_incl_startup": ratio(s_m1, s_m2),
        "same_notifications": multi_1p[-1][1] == multi_2p[-1][1] == one_file_2p[-1][1],
        "note": "a file is one input partition, so with 2 processes only one reads and decodes; "
                "'two files' is PROMO_INPUT=<directory> with one partition per file",
    }


def memory(cfg: Config, tmp: Path, data: datasets.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"open_sessions": cfg.open_sessions,
                           "input": "one event per user (login / product_view x2 / add_to_cart), "
                                    "all within 4 min: nothing closes"}
    for mode in ("rss", "tracemalloc"):
        log(f"memory: {mode}, {cfg.open_sessions} open sessions")
        proc = subprocess.run([PY, "-m", "bench.memory", mode, str(data.path)], cwd=ROOT,
                              check=True, capture_output=True)
        out[f"in_process_{mode}"] = orjson.loads(proc.stdout)
    out["bytes_per_open_session"] = out["in_process_rss"]["bytes_per_open_session"]
    return out


def decode(cfg: Config, tmp: Path, backlog: datasets.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"lines": cfg.decode_lines, "runs": cfg.slow_repeats}
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
    log("stages: µs per event of each stage in one process, and the memory-latency floors")
    return stages.measure(decode_bench.read_lines(backlog.path), cfg.slow_repeats)


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
    t100 = r["file_100k_users"]["job_events_per_s_excl_startup"]
    t1m = r["file_1m_users"]["job_events_per_s_excl_startup"]
    scale = r["kafka"]["two_process_speedup_excl_startup"]
    mem = r["memory"]["bytes_per_open_session"]
    snap = r["recovery"]["cost_fraction"]
    k = r["kafka"]["one_process_events_per_s_excl_startup"]
    p99 = r["kafka"]["latency"]["p99_ms"]
    rows = {
        "file_100k_users_events_per_s_per_process": (">= 300000 (excl. start-up)", t100, t100 >= 300_000),
        "file_1m_users_events_per_s_per_process": (">= 200000 (excl. start-up)", t1m, t1m >= 200_000),
        "two_process_speedup": (">= 1.7 (Kafka, 4 partitions, excl. start-up)", scale, scale >= 1.7),
        "bytes_per_open_session": ("<= 400 (in-process RSS growth)", mem, mem <= 400),
        "snapshot_cost_fraction": ("<= 0.15 (every 10 s vs none)", snap, snap <= 0.15),
        "kafka_events_per_s_per_process": (">= 150000 (excl. start-up)", k, k >= 150_000),
        "p99_logout_to_notification_ms": ("<= 250 at 10k events/s", p99, p99 <= 250),
    }
    return {name: {"target": t, "value": v, "met": bool(met)} for name, (t, v, met) in rows.items()}


def print_table(r: dict[str, Any]) -> None:
    f100, f1m, rec, live, mem = (r["file_100k_users"], r["file_1m_users"], r["recovery"],
                                 r["backlog_vs_live"], r["memory"])
    k, lat, sc, dec = r["kafka"], r["kafka"]["latency"], r["scaling_files"], r["decode"]
    st, floor = r["stages"]["us_per_event"], r["stages"]["floors_us_per_event"]
    rows = [
        ("figure", "value", "vs reference / note", "target"),
        ("file 100k users, ev/s/process", f"{f100['job_events_per_s_excl_startup']:,}",
         f"{f100['job_vs_reference']}x ref ({f100['reference_events_per_s']:,}/s); incl. start-up "
         f"{f100['job_events_per_s_incl_startup']:,}", _mark(r, "file_100k_users_events_per_s_per_process")),
        ("file 1M users, ev/s/process", f"{f1m['job_events_per_s_excl_startup']:,}",
         f"{f1m['job_vs_reference']}x ref ({f1m['reference_events_per_s']:,}/s); incl. start-up "
         f"{f1m['job_events_per_s_incl_startup']:,}", _mark(r, "file_1m_users_events_per_s_per_process")),
        ("offline core 100k / 1M users", f"{f100['offline_core_events_per_s']:,} / "
         f"{f1m['offline_core_events_per_s']:,}", f"{f100['offline_core_vs_reference']}x / "
         f"{f1m['offline_core_vs_reference']}x ref", ""),
        ("start-up (1 / 2 processes)", f"{r['startup']['one_process_s']} s / "
         f"{r['startup']['two_processes_s']} s", "job on a 1-line file", ""),
        ("2 processes, Kafka 4 partitions", f"{k['two_process_speedup_excl_startup']}x",
         f"incl. start-up {k['two_process_speedup_incl_startup']}x", _mark(r, "two_process_speedup")),
        ("2 processes, 2 files (dir input)", f"{sc['two_files_speedup_excl_startup']}x",
         f"1 file: {sc['single_file_two_processes_total_events_per_s']:,} ev/s total", ""),
        ("bytes per open session", f"{mem['bytes_per_open_session']}",
         f"tracemalloc {mem['in_process_tracemalloc']['bytes_per_open_session']}, whole job "
         f"{mem['job_bytes_per_open_session']}, {mem['open_sessions']:,} open",
         _mark(r, "bytes_per_open_session")),
        ("snapshots every 10 s, cost", f"{rec['cost_fraction']:.1%}",
         f"throughput ratio {rec['throughput_ratio']}; {rec['lines']:,} lines, epochs per run "
         f"{rec['epochs_per_run']}", _mark(r, "snapshot_cost_fraction")),
        ("backlog vs live-like", f"speed {live['live_vs_backlog_speed']}x",
         f"same output: {live['same_output']} ({live['live_notifications']:,} notifications)", ""),
        ("Kafka->Kafka ev/s/process", f"{k['one_process_events_per_s_excl_startup']:,}",
         f"incl. start-up {k['one_process_events_per_s_incl_startup']:,}",
         _mark(r, "kafka_events_per_s_per_process")),
        ("logout->notification p50/p99", f"{lat['p50_ms']} / {lat['p99_ms']} ms",
         f"{lat['matched']} logouts at {lat['offered_per_s']:,} ev/s offered",
         _mark(r, "p99_logout_to_notification_ms")),
        ("decode_batch ev/s", f"{dec['epoch_ms']['decode_batch_events_per_s']:,} / "
         f"{dec['mixed_ts']['decode_batch_events_per_s']:,}",
         "epoch-ms / mixed ts; decoding alone", ""),
        ("run_offline ev/s", f"{dec['epoch_ms']['run_offline_events_per_s']:,} / "
         f"{dec['mixed_ts']['run_offline_events_per_s']:,}",
         f"epoch-ms / mixed ts; decode is {dec['epoch_ms']['decode_share_of_core']:.0%} of the core", ""),
        ("stages, µs/event (100k users)", f"{st['sum_of_stages']}",
         f"decode {st['decode_validate_split']}, sessions {st['sessions_and_closing']} (arrival "
         f"alone {st['of_which_arrival_alone']}), output {st['rules_and_notifications']}",
         "300k/s is 3.3 µs/event"),
        ("one pass over held events, µs/event", f"{floor['one_pass_grouped_by_user']}",
         f"by user; in arrival order {floor['one_pass_arrival_order']}", "memory latency"),
    ]
    print(table(rows), flush=True)


def _mark(r: dict[str, Any], name: str) -> str:
    t = r["targets"][name]
    return f"{t['target']}: {'met' if t['met'] else 'NOT met'}"


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    cfg = Config(quick)
    began = time.perf_counter()
    r: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "events": cfg.events,
        "repeats": {"fast": cfg.fast_repeats, "slow": cfg.slow_repeats, "offline_core": cfg.core_repeats,
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
        hundred_k = throughput_100k(cfg, tmp, backlog, live, shift, boot)
        r["file_100k_users"] = hundred_k["throughput"]
        r["backlog_vs_live"] = hundred_k["backlog_vs_live"]
        r["file_1m_users"] = throughput_1m(cfg, tmp, big, boot)
        big.path.unlink()
        live.path.unlink()
        scaling_source = backlog if cfg.scaling_events == backlog.events else datasets.traffic(
            tmp, 100_000, cfg.scaling_events)
        r["scaling_files"] = scaling_files(cfg, tmp, scaling_source, boot)
        r["recovery"] = recovery_cost(cfg, tmp, scaling_source, boot)
        open_users = datasets.one_event_per_user(tmp, cfg.open_sessions)
        r["memory"] = memory(cfg, tmp, open_users)
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
