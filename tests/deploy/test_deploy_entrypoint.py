"""deploy/entrypoint.sh run directly, as the container runs it (`sh /app/entrypoint.sh`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_helpers import ENTRYPOINT

EVENTS = [
    {"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "ts": 1767225600000,
     "source": "cart", "product_id": "p1"},
    {"event_id": "e2", "user_id": "u1", "type": "product_view", "ts": 1767225660000,
     "source": "catalog", "product_id": "p2"},
    {"event_id": "e3", "user_id": "u2", "type": "login", "ts": 1767225601000, "source": "auth"},
    {"event_id": "e4", "user_id": "u2", "type": "payment_complete", "ts": 1767225605000,
     "source": "payment"},
]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing leaks in from the developer's shell."""
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS) + "not json\n")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHON": sys.executable,  # the image has `python` on PATH; here: this venv
        "PROMO_INPUT": str(events),
        "PROMO_OUTPUT": str(tmp_path / "notifications.jsonl"),
        "PROMO_REJECTS_OUTPUT": str(tmp_path / "rejects.jsonl"),
        "PROMO_LATE_OUTPUT": str(tmp_path / "late.jsonl"),
        **extra,
    }


def run(shell: str, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shell, str(ENTRYPOINT), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def notifications(tmp_path: Path) -> dict[str, dict]:
    lines = (tmp_path / "notifications.jsonl").read_text().splitlines()
    return {n["user_id"]: n for n in map(json.loads, lines)}


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_file_mode_emits_notifications(tmp_path: Path, shell: str) -> None:
    done = run(shell, base_env(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr
    by_user = notifications(tmp_path)
    # The abandoned cart is promoted (the rules' outcome for u2 is theirs to decide).
    assert by_user["u1"]["action"] == "START_PROMOTION" and by_user["u1"]["products"] == ["p1"]
    assert json.loads((tmp_path / "rejects.jsonl").read_text())["reason"] == "not_json"


def test_creates_recovery_partitions_in_an_empty_directory(tmp_path: Path) -> None:
    recovery = tmp_path / "recovery"
    (recovery / "lost+found").mkdir(parents=True)  # what a fresh ext4 volume holds
    env = base_env(tmp_path, BYTEWAX_RECOVERY_DIRECTORY=str(recovery), PROMO_RECOVERY_PARTITIONS="3")
    done = run("sh", env, tmp_path)  # no snapshot/backup interval given: defaults apply
    assert done.returncode == 0, done.stderr
    assert "creating 3 recovery partitions" in done.stderr
    parts = sorted(p.name for p in recovery.glob("part-*.sqlite3"))
    assert parts == ["part-0.sqlite3", "part-1.sqlite3", "part-2.sqlite3"]
    # No scratch left behind; the store's recorded settings (dataflows/recovery_check.py) are kept.
    assert sorted(p.name for p in recovery.iterdir() if not p.name.startswith("part-")) == [
        "lost+found", "promotions-store.json"]
    assert notifications(tmp_path)["u1"]["action"] == "START_PROMOTION"

    # Second start: the partitions are resumed from, never recreated.
    before = {p.name: p.stat().st_ino for p in recovery.glob("part-*.sqlite3")}
    again = run("sh", env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "creating" not in again.stderr
    assert {p.name: p.stat().st_ino for p in recovery.glob("part-*.sqlite3")} == before


def fake_python(tmp_path: Path) -> tuple[str, Path]:
    """A PYTHON that only records how it was called (one line per call)."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "fake-python"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    script.chmod(0o755)
    return str(script), calls


def test_only_process_zero_creates_partitions(tmp_path: Path) -> None:
    python, calls = fake_python(tmp_path)
    recovery = tmp_path / "recovery"
    env = base_env(tmp_path, PYTHON=python, BYTEWAX_RECOVERY_DIRECTORY=str(recovery),
                   BYTEWAX_POD_NAME="session-promotions-1", BYTEWAX_STATEFULSET_NAME="session-promotions")
    done = run("sh", env, tmp_path, "-w", "2")
    assert done.returncode == 0, done.stderr
    assert "process 1 holds no recovery partitions" in done.stderr
    assert list(recovery.iterdir()) == []
    # Only the dataflow was started, with the caller's extra flags passed through.
    assert calls.read_text().splitlines() == ["-m bytewax.run dataflows.promotions -w 2"]


def test_existing_partitions_are_left_alone(tmp_path: Path) -> None:
    python, calls = fake_python(tmp_path)
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    (recovery / "part-0.sqlite3").write_bytes(b"state")
    env = base_env(tmp_path, PYTHON=python, BYTEWAX_RECOVERY_DIRECTORY=str(recovery),
                   BYTEWAX_PYTHON_FILE_PATH="other.module:flow")
    done = run("sh", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["-m bytewax.run other.module:flow"]
    assert (recovery / "part-0.sqlite3").read_bytes() == b"state"


def test_records_default_to_files_not_stderr(tmp_path: Path) -> None:
    """Without PROMO_REJECTS_OUTPUT / PROMO_LATE_OUTPUT, records go to files in the working
    directory (in the image: its volume); stderr keeps only what is meant for people."""
    env = base_env(tmp_path)
    del env["PROMO_REJECTS_OUTPUT"], env["PROMO_LATE_OUTPUT"]
    done = run("sh", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert '{"kind"' not in done.stderr
    assert json.loads((tmp_path / "rejects.jsonl").read_text())["reason"] == "not_json"
    late = [json.loads(line) for line in (tmp_path / "late.jsonl").read_text().splitlines()]
    assert {e["event"]["event_id"] for e in late} == {"e3", "e4"}  # behind e2's time by > 10 s
