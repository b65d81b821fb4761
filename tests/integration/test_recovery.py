"""Crashes, broker restarts and rescaling against a real broker, real processes, real recovery.

Output is exactly once: after any sequence of kill -9 and resume from Bytewax's SQLite recovery
store, the notifications topic holds each id the pure core computes offline exactly once, and the
dead-letter topic each bad record exactly once (as often as it was in the input).
`CHAOS_KILLS` (default 5) sets how many times the cluster is killed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from promotion.decoding import decode_event
from promotion.events import Event
from promotion.generator import GeneratorConfig, generate
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.integration.cluster import Cluster, committed_epoch, init_recovery, wait_for_new_snapshot
from tests.integration.kafka_helpers import dead_lettered, drain, produce, topic_size

pytestmark = pytest.mark.kafka
LATENESS_S = 10


@dataclass(frozen=True)
class Dataset:
    lines: list[bytes]
    expected_ids: frozenset[str]  # what the pure core computes offline
    bad: Counter  # malformed records, each must be dead-lettered


@functools.cache
def dataset(events: int) -> Dataset:
    lines = list(generate(GeneratorConfig(seed=5, users=events // 20, events=events,
                                          rate_per_s=50.0, max_disorder_ms=3_000,
                                          duplicate_rate=0.01, bad_rate=0.01)))
    result = run_offline(lines, SessionConfig(lateness_ms=LATENESS_S * 1000),
                         load_rules(DEFAULT_RULES_PATH))
    bad = Counter(dead_lettered(line) for line in lines if not isinstance(decode_event(line), Event))
    return Dataset(lines, frozenset(n["notification_id"] for n in result.notifications), bad)


@pytest.fixture
def setup(request, kafka_bootstrap, topic_factory, tmp_path: Path):
    data = dataset(getattr(request, "param", 60_000))
    topics = {"in": topic_factory(4), "out": topic_factory(4), "dlq": topic_factory(1),
              "late": topic_factory(1)}
    produce(kafka_bootstrap, topics["in"], data.lines, 4)
    init_recovery(tmp_path / "recovery", 4)
    env = {
        "PROMO_MODE": "kafka",
        "PROMO_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PROMO_KAFKA_INPUT_TOPICS": topics["in"],
        "PROMO_KAFKA_NOTIFICATIONS_TOPIC": topics["out"],
        "PROMO_KAFKA_DLQ_TOPIC": topics["dlq"],
        "PROMO_KAFKA_LATE_TOPIC": topics["late"],
        "PROMO_KAFKA_STOP_AT_END": "true",
        "PROMO_ALLOWED_LATENESS_SECONDS": str(LATENESS_S),
        "PROMO_BATCH_SIZE": "200",
        "PROMO_SHARDS": "16",
        "BYTEWAX_RECOVERY_DIRECTORY": str(tmp_path / "recovery"),
        "BYTEWAX_SNAPSHOT_INTERVAL": "1",
        "BYTEWAX_RECOVERY_BACKUP_INTERVAL": "0",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    return kafka_bootstrap, topics, env, logs, data


def verdict(bootstrap: str, topics: dict[str, str], data: Dataset,
            exactly_once: bool = True) -> dict[str, int]:
    """Ids must equal the oracle's, each once; bad records each dead-lettered once. With
    `exactly_once` off only the distinct ids are compared (at-least-once). Returns counts."""
    ids = Counter(dict(m.headers())["notification_id"].decode() for m in drain(bootstrap, topics["out"]))
    assert set(ids) - data.expected_ids == set(), "unexpected notifications"
    missing = data.expected_ids - set(ids)
    assert missing == set(), f"{len(missing)} notifications missing"
    dead = Counter(m.value() for m in drain(bootstrap, topics["dlq"]))
    assert set(dead) == set(data.bad) and all(dead[v] >= n for v, n in data.bad.items())
    report = {"notifications": len(ids), "duplicates": ids.total() - len(ids),
              "dead_letters": dead.total(), "bad_records": data.bad.total()}
    if exactly_once:
        assert report["duplicates"] == 0, f"{report['duplicates']} notifications written twice"
        assert dead == data.bad, f"{dead.total() - data.bad.total()} dead letters written twice"
    return report


def run_to_completion(cluster: Cluster, attempts: int = 5) -> None:
    for _ in range(attempts):
        cluster.start()
        if cluster.wait(timeout=240) == [0] * cluster.processes:
            return
        cluster.kill()
    raise AssertionError(f"did not complete after {attempts} restarts:\n{cluster.tail()}")


@pytest.mark.parametrize("setup", [300_000], indirect=True)
def test_repeated_kill_9_loses_nothing(setup, record_property) -> None:
    bootstrap, topics, env, logs, data = setup
    cluster = Cluster(env | {"PROMO_BATCH_SIZE": "50"}, processes=2, log_dir=logs)
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    kills = max(5, int(os.environ.get("CHAOS_KILLS", "5")))
    recovery = Path(env["BYTEWAX_RECOVERY_DIRECTORY"])
    for killed in range(kills):
        cluster.start()
        if killed == 0:  # before the first snapshot (1 s interval)
            time.sleep(0.4)
            assert committed_epoch(recovery) == 0, "first kill must land before any snapshot"
        elif killed == 1:  # while resuming: the cluster is still starting up
            time.sleep(0.5)
        else:  # at a random moment after the next snapshot, so every run makes progress
            assert wait_for_new_snapshot(cluster, recovery), "finished before all kills"
            time.sleep(rng.uniform(0, 0.3))
        assert not cluster.finished(), "finished before all kills"
        cluster.kill()
    killed = kills
    run_to_completion(cluster)
    report = verdict(bootstrap, topics, data) | {"kills": killed, "starts": cluster.starts}
    record_property("chaos", json.dumps(report))
    print("chaos report:", report)


def test_broker_restart_mid_stream(setup, kafka_broker) -> None:
    bootstrap, topics, env, logs, data = setup
    cluster = Cluster(env, processes=1, log_dir=logs)
    cluster.start()
    time.sleep(1.0)
    kafka_broker.restart()
    codes = cluster.wait(timeout=240)
    if codes != [0]:  # it may fail rather than ride it out; then it resumes from recovery
        run_to_completion(cluster)
    print("broker restart report:", verdict(bootstrap, topics, data), "exit codes of first run:", codes)


@pytest.mark.parametrize("setup", [300_000], indirect=True)
def test_rescale_from_2_to_4_to_1_workers(setup) -> None:
    """Stop at 2 workers after a snapshot, resume at 4, stop again, finish at 1."""
    bootstrap, topics, env, logs, data = setup
    env = {**env, "PROMO_BATCH_SIZE": "10"}  # a slow run (tiny batches) leaves room for two stops
    recovery = Path(env["BYTEWAX_RECOVERY_DIRECTORY"])
    for workers in (2, 4):
        cluster = Cluster(env, processes=1, workers=workers, log_dir=logs)
        cluster.start()
        assert wait_for_new_snapshot(cluster, recovery), "finished before it could be rescaled"
        cluster.kill()
    run_to_completion(Cluster(env, processes=1, workers=1, log_dir=logs))
    print("rescale report:", verdict(bootstrap, topics, data))


@pytest.mark.parametrize("setup", [300_000], indirect=True)
@pytest.mark.parametrize(("exactly_once", "first"), [(True, False), (False, False), (True, True)],
                         ids=["exactly-once", "at-least-once", "before-the-first-snapshot"])
def test_kill_between_a_produce_and_the_next_snapshot(setup, exactly_once: bool, first: bool) -> None:
    """The worst case, forced: records written after the newest snapshot (or before the first
    one, when the store holds no sink offset yet), then kill -9. The resumed run replays them;
    with exactly-once on they are dropped, with it off they are doubled."""
    bootstrap, topics, env, logs, data = setup
    env = env | {"BYTEWAX_SNAPSHOT_INTERVAL": "60" if first else "3", "PROMO_BATCH_SIZE": "50",
                 "PROMO_KAFKA_EXACTLY_ONCE": str(exactly_once).lower()}
    recovery = Path(env["BYTEWAX_RECOVERY_DIRECTORY"])
    cluster = Cluster(env, processes=1, log_dir=logs)
    cluster.start()
    if not first:
        assert wait_for_new_snapshot(cluster, recovery), "finished before the first snapshot"
    epoch, at_snapshot = committed_epoch(recovery), topic_size(bootstrap, topics["out"])
    deadline = time.monotonic() + 30
    while topic_size(bootstrap, topics["out"]) < at_snapshot + 50:
        assert not cluster.finished() and time.monotonic() < deadline, "no output after the snapshot"
        time.sleep(0.02)
    cluster.kill()
    assert committed_epoch(recovery) == epoch, "a snapshot landed before the kill: not the worst case"
    run_to_completion(cluster)
    report = verdict(bootstrap, topics, data, exactly_once=exactly_once)
    resumed = (logs / f"run{cluster.starts}-proc0.log").read_text()
    if exactly_once:
        assert "their replays are dropped" in resumed, resumed[-2000:]
    else:
        assert report["duplicates"] >= 50, report
    print("worst-case kill report:", report, "exactly once:", exactly_once, "first:", first)
