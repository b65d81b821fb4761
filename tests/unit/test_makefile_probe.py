"""`make` probes Python interpreters quietly: a pyenv shim without that version prints nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIM = """#!/bin/sh
echo "pyenv: $(basename "$0"): command not found"
echo "pyenv: $(basename "$0"): command not found" >&2
exit 127
"""


def test_a_missing_pyenv_version_is_not_printed(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3.12").write_text(SHIM)
    (shims / "python3.12").chmod(0o755)
    (shims / "python3.11").symlink_to(sys.executable)  # the usable one
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}
    env.pop("PYTHON", None)
    run = subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "command not found" not in run.stdout + run.stderr
    assert "python3.11 -m venv" in run.stdout
