"""What exactly-once Kafka output costs: resume time after a kill -9, and live latency.

Each figure is measured with `PROMO_KAFKA_EXACTLY_ONCE` on and off in the same run, against the
same local broker, so the ratio is what to read. Run alone with `python -m bench.exactly_once`
(writes `bench/results-exactly-once.json`); `bench.run` includes it in `bench/results.json`.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from statistics import median
from pathlib import Path
from typing import Any

from bench import datasets, kafka_bench
from bench.common import ROOT, log, ratio
from tests.integration.cluster import Cluster, committed_epoch, init_recovery, wait_for_new_snapshot
from tests.integration.kafka_helpers import drain, topic_size

RESULTS = ROOT / "bench" / "results-exactly-once.json"
SNAPSHOT_INTERVAL_S = 4
_READ_BACK = re.compile(rb": (\d+) records were written after the snapshot \(read back in ([\d.]+) s\)")
#: Kill once this many notifications were written after the newest snapshot.
WRITTEN_AFTER_SNAPSHOT = 5_000
#: Latency runs alternate on, off, on, off: the machine's load drifts between runs.
LATENCY_ROUNDS = 2


def resume_after_kill(bootstrap: str, topics: kafka_bench.Topics, input_topic: str, work: Path,
                      exactly_once: bool) -> dict[str, Any]:
    """Kill -9 once output was written after a snapshot, then time the resumed run to its end."""
    flag = "on" if exactly_once else "off"
    store, logs = work / f"store-{flag}", work / f"logs-{flag}"
    logs.mkdir(parents=True)
    init_recovery(store, 4)
    outputs = topics.outputs()
    env = kafka_bench.kafka_env(
        bootstrap, input_topic, outputs, PROMO_KAFKA_STOP_AT_END="true",
        PROMO_KAFKA_EXACTLY_ONCE=str(exactly_once).lower(), PROMO_BATCH_SIZE=100,
        BYTEWAX_RECOVERY_DIRECTORY=store, BYTEWAX_SNAPSHOT_INTERVAL=SNAPSHOT_INTERVAL_S,
        BYTEWAX_RECOVERY_BACKUP_INTERVAL=0)
    cluster = Cluster(env, log_dir=logs)
    cluster.start()
    if not wait_for_new_snapshot(cluster, store, timeout=120):
        raise RuntimeError("the run ended before its first snapshot: use more events")
    out_topic = outputs["PROMO_KAFKA_NOTIFICATIONS_TOPIC"]
    at_snapshot = topic_size(bootstrap, out_topic)
    while topic_size(bootstrap, out_topic) < at_snapshot + WRITTEN_AFTER_SNAPSHOT:
        if cluster.finished():
            raise RuntimeError("the run ended before the kill: use more events")
        time.sleep(0.01)
    cluster.kill()
    epoch = committed_epoch(store)
    began = time.perf_counter()
    cluster.start()
    codes = cluster.wait(timeout=900)
    seconds = time.perf_counter() - began
    if codes != [0]:
        raise RuntimeError(f"resumed run failed {codes}:\n{cluster.tail()}")
    read_back = _READ_BACK.findall((logs / f"run{cluster.starts}-proc0.log").read_bytes())
    ids = Counter(dict(m.headers())["notification_id"]
                  for m in drain(bootstrap, outputs["PROMO_KAFKA_NOTIFICATIONS_TOPIC"]))
    return {
        "resume_s": round(seconds, 2),
        "killed_after_epoch": epoch,
        "records_read_back": sum(int(n) for n, _s in read_back),
        "read_back_s": round(sum(float(s) for _n, s in read_back), 3),
        "notifications": len(ids),
        "duplicates": ids.total() - len(ids),
    }


def measure(bootstrap: str, topics: kafka_bench.Topics, input_topic: str, template: Path,
            rules: Path, latency_rate: int, latency_window_s: float) -> dict[str, Any]:
    """Resume after a kill and live latency, each with exactly-once on and off."""
    with tempfile.TemporaryDirectory(prefix="bench-eo-") as tmp:
        resume = {}
        for on in (True, False):
            log(f"exactly-once {'on' if on else 'off'}: kill -9 after a snapshot, then resume")
            resume["on" if on else "off"] = resume_after_kill(bootstrap, topics, input_topic,
                                                              Path(tmp), on)
    runs: dict[str, list[Any]] = {"on": [], "off": []}
    for _ in range(LATENCY_ROUNDS):
        for on in (True, False):
            log(f"exactly-once {'on' if on else 'off'}: latency at {latency_rate} events/s")
            runs["on" if on else "off"].append(kafka_bench.latency(
                bootstrap, topics, template, latency_rate, latency_window_s, rules=rules,
                PROMO_KAFKA_EXACTLY_ONCE=str(on).lower()))
    latency = {flag: {key: median(getattr(r, key) for r in results)
                      for key in ("p50_ms", "p99_ms", "max_ms", "matched", "offered_per_s")}
               for flag, results in runs.items()}
    return {
        "resume": resume,
        "resume_on_vs_off": ratio(resume["on"]["resume_s"], resume["off"]["resume_s"]),
        "latency": latency,
        "latency_p99_on_vs_off": ratio(latency["on"]["p99_ms"], latency["off"]["p99_ms"]),
        "note": f"resume_s: restart to end of input after a kill -9 once {WRITTEN_AFTER_SNAPSHOT} "
                "notifications were written after a snapshot; includes replaying the input since "
                "the snapshot and, with exactly-once on, reading back what was written after it. "
                "Latency: logout produce() to the notification at a consumer, median of "
                f"{LATENCY_ROUNDS} alternating runs each.",
    }


def main() -> None:
    from bench.run import _latency_rules  # the same rules as the main benchmark's latency runs

    events = 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-eo-data-") as tmp, \
            kafka_bench.local_broker() as bootstrap:
        work = Path(tmp)
        source = datasets.traffic(work, 100_000, events)
        template = datasets.traffic(work, 50_000, 10_000 * 40, name="latency-template.jsonl",
                                    duplicate_rate=0.0)
        topics = kafka_bench.Topics(bootstrap)
        input_topic = topics.create("in", 4)
        kafka_bench.produce_file(bootstrap, input_topic, source.path)
        result = measure(bootstrap, topics, input_topic, template.path, _latency_rules(work),
                         10_000, 20)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
