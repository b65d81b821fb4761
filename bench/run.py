"""Benchmark: the full job file to file, against a plain Python loop over the same file.

Figures are medians of several runs and are reported as ratios to the reference measured in the
same run, because this machine is noisy. `BENCH_QUICK=1` runs a small configuration.
Writes `bench/results.json`.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from promotion.generator import GeneratorConfig, write_jsonl
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

ROOT = Path(__file__).resolve().parents[1]
GAP_MS = 300_000


def reference_loop(path: Path) -> int:
    """The same decisions with no framework: in-order sessions in a dict, one core."""
    open_sessions: dict[str, list] = {}
    decisions = 0

    def close(session: list) -> int:
        return 1 if session[2] or any(q > 0 for q in session[3].values()) else 0

    with path.open("rb") as lines:
        for line in lines:
            try:
                e = orjson.loads(line)
                user, ts, kind = e["user_id"], e["ts"], e["type"]
            except Exception:  # noqa: BLE001
                continue
            if not isinstance(ts, int):
                continue  # the reference skips RFC 3339 parsing: it flatters the baseline
            s = open_sessions.get(user)
            if s is not None and (ts - s[1] > GAP_MS or s[4]):
                decisions += close(s)
                s = None
            if s is None:
                s = open_sessions[user] = [ts, ts, False, {}, False]
            s[1] = ts
            if kind == "add_to_cart":
                s[3][e["product_id"]] = s[3].get(e["product_id"], 0) + e.get("quantity", 1)
            elif kind == "remove_from_cart":
                s[3][e["product_id"]] = max(0, s[3].get(e["product_id"], 0) - e.get("quantity", 1))
            elif kind == "payment_complete":
                s[2] = True
            elif kind == "logout":
                s[4] = True
    return decisions + sum(close(s) for s in open_sessions.values())


def offline_core(path: Path) -> int:
    rules = load_rules(DEFAULT_RULES_PATH)
    with path.open("rb") as lines:
        stripped = (line.rstrip(b"\n") for line in lines)
        result = run_offline(stripped, SessionConfig(gap_ms=GAP_MS, lateness_ms=10_000), rules)
    return len(result.notifications)


def full_job(path: Path, out: Path) -> int:
    env = {**os.environ, "PROMO_INPUT": str(path), "PROMO_OUTPUT": str(out),
           "PROMO_REJECTS_OUTPUT": os.devnull, "PROMO_LATE_OUTPUT": os.devnull}
    subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], env=env,
                   cwd=ROOT, check=True)
    return sum(1 for _ in out.open("rb"))


def timed(fn, *args, repeats: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    events = 100_000 if quick else 1_000_000
    repeats = 3
    figures: dict[str, object] = {"quick": quick, "events": events, "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        for users in (100_000, 1_000_000):
            path = Path(tmp) / f"events-{users}.jsonl"
            write_jsonl(path, GeneratorConfig(seed=1, users=users, events=events, rate_per_s=2_000,
                                              max_disorder_ms=2_000, ts_format="epoch_ms"))
            ref_s, ref_n = timed(reference_loop, path, repeats=repeats)
            core_s, core_n = timed(offline_core, path, repeats=repeats)
            job_s, job_n = timed(full_job, path, Path(tmp) / "out.jsonl", repeats=repeats)
            row = {
                "reference_events_per_s": round(events / ref_s),
                "offline_core_events_per_s": round(events / core_s),
                "full_job_events_per_s": round(events / job_s),
                "full_job_vs_reference": round(ref_s / job_s, 3),
                "offline_core_vs_reference": round(ref_s / core_s, 3),
                "notifications": job_n,
                "reference_decisions": ref_n,
                "offline_core_notifications": core_n,
            }
            figures[f"users_{users}"] = row
            print(f"{users:>9} users: " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    (ROOT / "bench" / "results.json").write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(f"wrote {ROOT / 'bench' / 'results.json'}")


if __name__ == "__main__":
    main()
