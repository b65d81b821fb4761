"""Before the run: Bytewax's directories and unwritable outputs are one line naming the variable;
a `PROMO_*` variable no setting reads is warned about once, with the closest known name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflows.preflight import bytewax_problems
from dataflows.settings import unknown_variables

ROOT = Path(__file__).resolve().parents[2]


def run_service(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    base.update(PROMO_OUTPUT=str(tmp_path / "out.jsonl"), PROMO_REJECTS_OUTPUT=str(tmp_path / "rej.jsonl"),
                PROMO_LATE_OUTPUT=str(tmp_path / "late.jsonl"))
    base.update(env)
    return subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions", *args],
                          cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def test_unknown_variables_name_the_closest_setting() -> None:
    warnings = unknown_variables({"PROMO_GAPSECONDS": "3", "PROMO_SHARDS": "8", "PROMO_XYZZY": "1",
                                  "PROMO_RECOVERY_PARTITIONS": "4", "HOME": "/root"})
    assert warnings == [
        "session-promotions: warning: PROMO_GAPSECONDS is not a setting and is ignored "
        "(did you mean PROMO_GAP_SECONDS?)",
        "session-promotions: warning: PROMO_XYZZY is not a setting and is ignored",
    ]


def test_bytewax_directories(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert bytewax_problems({}, None) == []
    assert bytewax_problems({"BYTEWAX_DATAFLOW_API_CACHE_PATH": str(missing)}, None) == []  # API off
    api = {"BYTEWAX_DATAFLOW_API_ENABLED": "false", "BYTEWAX_DATAFLOW_API_CACHE_PATH": str(missing)}
    assert bytewax_problems(api, None) == [
        f"BYTEWAX_DATAFLOW_API_CACHE_PATH: directory '{missing}' does not exist "
        "(the API server writes dataflow.json there)"]
    (tmp_path / "file").touch()
    [problem] = bytewax_problems({}, tmp_path / "file")
    assert problem.startswith("recovery directory (-r / BYTEWAX_RECOVERY_DIRECTORY): ")
    assert "is not a directory" in problem


@pytest.mark.parametrize(("env", "args", "message"), [
    ({"BYTEWAX_DATAFLOW_API_ENABLED": "true", "BYTEWAX_DATAFLOW_API_CACHE_PATH": "/nonexistent/api"}, (),
     "BYTEWAX_DATAFLOW_API_CACHE_PATH: directory '/nonexistent/api' does not exist"),
    ({"PROMO_OUTPUT": "/proc/x.out"}, (), "PROMO_OUTPUT: cannot write '/proc/x.out'"),
    ({"PROMO_LATE_OUTPUT": "/proc/late.out"}, (), "PROMO_LATE_OUTPUT: cannot write '/proc/late.out'"),
], ids=["api-cache", "output", "late-output"])
def test_bytewax_and_output_errors_are_one_line_before_the_run(
        tmp_path: Path, env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    run = run_service(tmp_path, *args, **env)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("session-promotions: invalid configuration: ")
    assert message in run.stderr
    assert run.stdout == ""


def test_a_misspelled_setting_is_warned_about_once(tmp_path: Path) -> None:
    run = run_service(tmp_path, PROMO_GAPSECONDS="3")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ("session-promotions: warning: PROMO_GAPSECONDS is not a setting and is "
                          "ignored (did you mean PROMO_GAP_SECONDS?)\n")
    assert (tmp_path / "out.jsonl").stat().st_size > 0


def test_a_cluster_peer_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    """What Bytewax would turn into a panic and a traceback (and Kubernetes into a crash loop)."""
    run = run_service(tmp_path, "-i", "0", "-a", "127.0.0.1:2101;no-such-peer.invalid:2102",
                      PROMO_PEER_RESOLVE_SECONDS="0.5")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "panicked" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(
        "session-promotions: invalid configuration: cluster address 'no-such-peer.invalid:2102' "
        "did not resolve within 0.5 s")
