"""PROMO_ENGINE: the kernel by default, the Python specification on request, and one clear line
(never a traceback) when the kernel is asked for but not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflows.kernel_engine import MISSING

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    out = tmp_path / "out.jsonl"
    full = {**os.environ, "PROMO_OUTPUT": str(out), "PROMO_REJECTS_OUTPUT": os.devnull,
            "PROMO_LATE_OUTPUT": os.devnull, **env}
    return subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=120)


def test_a_missing_kernel_fails_at_start_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    # A module that is found first and refuses to import, as an absent build would.
    (blocker / "promotions_kernel.py").write_text("raise ImportError('not built')\n")
    run = _run(tmp_path, PYTHONPATH=f"{blocker}{os.pathsep}{ROOT}", PROMO_ENGINE="kernel")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [f"session-promotions: invalid configuration: {MISSING}"]


@pytest.mark.parametrize("engine", ["kernel", "python"])
def test_each_engine_runs_the_bundled_sample(tmp_path: Path, engine: str) -> None:
    run = _run(tmp_path, PROMO_ENGINE=engine)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") > 100


def test_an_unknown_engine_is_a_configuration_error(tmp_path: Path) -> None:
    run = _run(tmp_path, PROMO_ENGINE="java")
    assert run.returncode != 0 and "PROMO_ENGINE" in run.stderr and "Traceback" not in run.stderr
