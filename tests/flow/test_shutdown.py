"""SIGTERM or SIGINT while batches are in flight: one line, exit 0, and a restart from recovery
completes with exactly the outputs of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promotion.generator import GeneratorConfig, write_jsonl
from tests.integration.cluster import committed_epoch, init_recovery

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "bytewax.run", "dataflows.promotions"]
OUTPUTS = ("out.jsonl", "rej.jsonl", "late.jsonl")


def _env(events: Path, work: Path, recovery: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update(PROMO_INPUT=str(events), PROMO_OUTPUT=str(work / "out.jsonl"),
               PROMO_REJECTS_OUTPUT=str(work / "rej.jsonl"), PROMO_LATE_OUTPUT=str(work / "late.jsonl"),
               PROMO_BATCH_SIZE="100")
    if recovery is not None:
        env.update(BYTEWAX_RECOVERY_DIRECTORY=str(recovery), BYTEWAX_SNAPSHOT_INTERVAL="1",
                   BYTEWAX_RECOVERY_BACKUP_INTERVAL="0")
    return env


def _outputs(work: Path) -> dict[str, list[bytes]]:
    return {name: sorted((work / name).read_bytes().splitlines()) for name in OUTPUTS}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[bytes]]]:
    """The events and what one run without a stop writes from them."""
    work = tmp_path_factory.mktemp("uninterrupted")
    events = work / "events.jsonl"
    write_jsonl(events, GeneratorConfig(seed=8, users=15_000, events=300_000, rate_per_s=90.0,
                                        max_disorder_ms=2_000, bad_rate=0.005))
    run = subprocess.run(COMMAND, cwd=ROOT, env=_env(events, work, None), capture_output=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return events, _outputs(work)


@pytest.mark.parametrize(("stop", "workers"), [(signal.SIGTERM, "1"), (signal.SIGINT, "1"),
                                               (signal.SIGTERM, "2")],
                         ids=["SIGTERM-1-worker", "SIGINT-1-worker", "SIGTERM-2-workers"])
def test_a_stop_mid_run_is_one_line_and_resumes_without_loss(
        uninterrupted: tuple[Path, dict[str, list[bytes]]], stop: signal.Signals, workers: str,
        tmp_path: Path) -> None:
    events, expected = uninterrupted
    init_recovery(tmp_path / "rec", 2)
    env = _env(events, tmp_path, tmp_path / "rec")
    first = subprocess.Popen(COMMAND + ["-w", workers], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while committed_epoch(tmp_path / "rec") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "finished before it could be stopped"
    first.send_signal(stop)
    out, err = first.communicate(timeout=60)  # stops promptly instead of hanging
    assert first.returncode == 0
    assert out == b""
    assert err.decode() == (f"session-promotions: stopped by {stop.name}; "
                            "the next start resumes from the recovery store's last snapshot\n")
    partial = (tmp_path / "out.jsonl").read_bytes().count(b"\n")
    assert 0 < partial < len(expected["out.jsonl"])

    second = subprocess.run(COMMAND + ["-w", workers], cwd=ROOT, env=env, capture_output=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr == b""
    assert _outputs(tmp_path) == expected


def test_a_stop_without_recovery_says_the_next_start_begins_again(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, GeneratorConfig(seed=3, users=5_000, events=200_000, rate_per_s=90.0))
    env = {**_env(events, tmp_path, None), "PROMO_BATCH_SIZE": "20"}
    job = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ((tmp_path / "out.jsonl").exists() and (tmp_path / "out.jsonl").stat().st_size) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, "finished before it could be stopped"
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 0
    assert err.decode() == ("session-promotions: stopped by SIGTERM; "
                            "no recovery store: the next start begins again from the start\n")
