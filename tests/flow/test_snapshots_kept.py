"""Shards skip pickling their state only when the run is known to keep no recovery store."""

from __future__ import annotations

import sys
import types

import pytest

from dataflows import flow


def _as_main(monkeypatch: pytest.MonkeyPatch, module: str, argv: list[str]) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name=module)  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("BYTEWAX_RECOVERY_DIRECTORY", raising=False)


def test_bytewax_run_without_recovery_keeps_no_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "bytewax.run", ["bytewax.run", "dataflows.promotions"])
    assert flow.snapshots_kept() is False


@pytest.mark.parametrize("argv", [["bytewax.run", "dataflows.promotions", "-r", "/tmp/x"],
                                  ["bytewax.run", "--recovery-directory=/tmp/x", "dataflows.promotions"]])
def test_bytewax_run_with_recovery_flag_keeps_snapshots(monkeypatch: pytest.MonkeyPatch,
                                                        argv: list[str]) -> None:
    _as_main(monkeypatch, "bytewax.run", argv)
    assert flow.snapshots_kept() is True


def test_bytewax_run_with_recovery_env_keeps_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "bytewax.run", ["bytewax.run", "dataflows.promotions"])
    monkeypatch.setenv("BYTEWAX_RECOVERY_DIRECTORY", "/tmp/x")
    assert flow.snapshots_kept() is True


def test_other_runners_may_have_a_store_so_snapshots_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_main(monkeypatch, "my_service", ["my_service"])  # e.g. run_main(flow, recovery_config=...)
    assert flow.snapshots_kept() is True
