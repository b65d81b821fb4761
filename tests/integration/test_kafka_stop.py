"""Kafka mode: SIGTERM mid-run is one line and exit 0; the restart from recovery completes with
every notification of the offline core (at-least-once: ids, not copies, are compared)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promotion.generator import GeneratorConfig, generate
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.integration.cluster import committed_epoch, init_recovery
from tests.integration.kafka_helpers import ROOT, drain, produce

COMMAND = [sys.executable, "-m", "bytewax.run", "dataflows.promotions"]


@pytest.mark.kafka
def test_sigterm_mid_run_then_resume_loses_nothing(kafka_bootstrap: str, topic_factory,
                                                   tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=31, users=3_000, events=120_000, rate_per_s=40.0,
                                          max_disorder_ms=2_000, bad_rate=0.005)))
    topics = {"in": topic_factory(2), "out": topic_factory(2), "dlq": topic_factory(1),
              "late": topic_factory(1)}
    produce(kafka_bootstrap, topics["in"], lines, 2)
    init_recovery(tmp_path / "rec", 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update(PROMO_MODE="kafka", PROMO_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
               PROMO_KAFKA_INPUT_TOPICS=topics["in"], PROMO_KAFKA_NOTIFICATIONS_TOPIC=topics["out"],
               PROMO_KAFKA_DLQ_TOPIC=topics["dlq"], PROMO_KAFKA_LATE_TOPIC=topics["late"],
               PROMO_KAFKA_STOP_AT_END="true", PROMO_BATCH_SIZE="50",
               BYTEWAX_RECOVERY_DIRECTORY=str(tmp_path / "rec"), BYTEWAX_SNAPSHOT_INTERVAL="1",
               BYTEWAX_RECOVERY_BACKUP_INTERVAL="0")
    first = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while committed_epoch(tmp_path / "rec") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "finished before it could be stopped"
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-3000:]
    assert err.decode() == ("session-promotions: stopped by SIGTERM; "
                            "the next start resumes from the recovery store's last snapshot\n")
    partial = {m.headers()[0][1] for m in drain(kafka_bootstrap, topics["out"])}

    second = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    expected = run_offline(lines, SessionConfig(lateness_ms=10_000), load_rules(DEFAULT_RULES_PATH))
    ids = {dict(m.headers())["notification_id"].decode() for m in drain(kafka_bootstrap, topics["out"])}
    assert ids == {n["notification_id"] for n in expected.notifications}
    assert 0 < len(partial) < len(ids)
