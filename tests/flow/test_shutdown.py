"""SIGTERM stops the job at once (like Ctrl-C); the next start resumes from recovery and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

from promotion.generator import GeneratorConfig, write_jsonl
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.integration.cluster import committed_epoch, init_recovery

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_then_resume_loses_nothing(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, GeneratorConfig(seed=8, users=15_000, events=500_000, rate_per_s=90.0,
                                        max_disorder_ms=2_000, bad_rate=0.005))
    init_recovery(tmp_path / "rec", 2)
    env = {**os.environ, "PROMO_INPUT": str(events), "PROMO_OUTPUT": str(tmp_path / "out.jsonl"),
           "PROMO_REJECTS_OUTPUT": str(tmp_path / "rej.jsonl"),
           "PROMO_LATE_OUTPUT": str(tmp_path / "late.jsonl"), "PROMO_BATCH_SIZE": "100",
           "BYTEWAX_RECOVERY_DIRECTORY": str(tmp_path / "rec"), "BYTEWAX_SNAPSHOT_INTERVAL": "1",
           "BYTEWAX_RECOVERY_BACKUP_INTERVAL": "0"}
    command = [sys.executable, "-m", "bytewax.run", "dataflows.promotions"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while committed_epoch(tmp_path / "rec") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "finished before it could be stopped"
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=30)  # stops promptly instead of hanging
    assert "KeyboardInterrupt" in first.stderr.read().decode()
    partial = (tmp_path / "out.jsonl").read_bytes().count(b"\n")

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    written = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    expected = run_offline(events.read_bytes().splitlines(), SessionConfig(lateness_ms=10_000),
                           load_rules(DEFAULT_RULES_PATH)).notifications
    assert Counter(n["notification_id"] for n in written) == Counter(
        n["notification_id"] for n in expected)
    assert 0 < partial < len(expected)
