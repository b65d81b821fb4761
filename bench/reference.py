"""The reference (a plain Python loop, one core) and the offline core (the job's pieces in one loop).

The reference computes the same decisions as the default rules (a payment stops, a cart left over
starts a promotion) on in-arrival-order sessions in a dict, with no framework: the yardstick the
job's throughput is a ratio to, measured in the same run.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.common import job_gc_policy, shard_cores
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

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
    """The job's pieces in one loop, under the job's garbage-collector policy (automatic
    collection off, see dataflows/gc_tuning.py), so the figure compares with the job's."""
    rules = load_rules(DEFAULT_RULES_PATH)
    with job_gc_policy(), path.open("rb") as lines:
        stripped = (line.rstrip(b"\n") for line in lines)
        result = run_offline(stripped, SessionConfig(gap_ms=GAP_MS, lateness_ms=10_000), rules)
    return len(result.notifications)


def offline_kernel(path: Path, batch_size: int = 10_000, shards: int = 64) -> int:
    """The kernel engine's pieces in one loop (`dataflows.kernel_engine.decode_batch` and a
    `KernelCore` per shard, with the default rules), like `offline_core` for the Python engine."""
    from dataflows.kernel_engine import KernelCore, decode_batch
    from promotion.decoding import DEFAULT_MAX_EVENT_BYTES
    from promotion.pipeline import batched
    from promotion.routing import shard_keys

    rules = load_rules(DEFAULT_RULES_PATH)
    keys = shard_keys(shards)
    config = SessionConfig(gap_ms=GAP_MS, lateness_ms=10_000)
    cores = shard_cores(KernelCore, config, "input", keys, rules)
    notifications = 0
    with job_gc_policy(), path.open("rb") as lines:
        for batch in batched((line.rstrip(b"\n") for line in lines), batch_size):
            for key, work in decode_batch("input", batch, keys, DEFAULT_MAX_EVENT_BYTES).shards:
                notifications += len(cores[key].on_batch([work], 0).notifications)
        for core in cores.values():
            notifications += len(core.on_eof().notifications)
    return notifications
