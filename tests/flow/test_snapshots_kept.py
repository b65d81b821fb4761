"""Shards skip pickling their state only when the run is known to keep no recovery store, and
file outputs are kept (not emptied) whenever the run resumes from one."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from dataflows import flow

ROOT = Path(__file__).resolve().parents[2]


def _as_main(monkeypatch: pytest.MonkeyPatch, module: str, argv: list[str],
             parsed: dict | None = None) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name=module)  # type: ignore[assignment]
    if parsed is not None:
        main.kwargs = parsed  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("BYTEWAX_RECOVERY_DIRECTORY", raising=False)


def test_bytewax_run_without_recovery_keeps_no_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "bytewax.run", ["bytewax.run", "dataflows.promotions"],
             {"recovery_config": None})
    assert flow.snapshots_kept() is False
    assert flow.recovery_enabled() is False


def test_bytewax_run_with_recovery_keeps_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "bytewax.run", ["bytewax.run", "dataflows.promotions", "-r/tmp/x"],
             {"recovery_config": object()})
    assert flow.snapshots_kept() is True
    assert flow.recovery_enabled() is True


def test_other_runners_may_have_a_store_so_snapshots_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "my_service", ["my_service"])  # e.g. run_main(flow, recovery_config=...)
    assert flow.snapshots_kept() is True
    assert flow.recovery_enabled() is False


@pytest.mark.parametrize("flags", [["-r", "{store}"], ["-r{store}"], ["--recovery-directory", "{store}"],
                                   ["--recovery-directory={store}"], ["--recovery-dir={store}"],
                                   [], ["ENV"]])
def test_every_spelling_of_the_recovery_flag_is_seen(tmp_path: Path, flags: list[str]) -> None:
    """The real `python -m bytewax.run` parses its flags; the flow reads what it parsed."""
    store = tmp_path / "store"
    store.mkdir()
    probe = tmp_path / "probe_flow.py"
    probe.write_text(
        "import sys\n"
        "from bytewax.dataflow import Dataflow\n"
        "from bytewax.testing import TestingSource\n"
        "import bytewax.operators as op\n"
        "from dataflows.flow import recovery_enabled, snapshots_kept\n"
        "print(recovery_enabled(), snapshots_kept(), file=sys.stderr)\n"
        "flow = Dataflow('probe')\n"
        "op.inspect('out', op.input('inp', flow, TestingSource([])))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEWAX_")}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    env["BYTEWAX_SNAPSHOT_INTERVAL"] = "1"  # required with a store; harmless without
    env["BYTEWAX_RECOVERY_BACKUP_INTERVAL"] = "0"
    args = [a.format(store=store) for a in flags if a != "ENV"]
    if "ENV" in flags:
        env["BYTEWAX_RECOVERY_DIRECTORY"] = str(store)
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(store), "1"], check=True,
                   env=env, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "probe_flow", *args], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    expected = "False False" if not flags else "True True"
    assert run.stderr.splitlines()[0] == expected
