"""How the Rust kernel is built: the Makefile's stamps, the crate's features, maturin's settings.

The Makefile is asked what it would do (`make -n`, with -W to mark a file changed) against a
scratch venv whose stamps are up to date, so nothing is built and the real .venv is not touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy_helpers import REPO

KERNEL = REPO / "kernel"
INSTALL_KERNEL = "pip install --quiet --no-deps --force-reinstall ./kernel"


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv directory whose stamps are newer than every input."""
    venv = tmp_path / "venv"
    venv.mkdir()
    for stamp in (".installed", ".kernel"):
        (venv / stamp).touch()
    return venv


def make(venv: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    for inherited in ("PROMO_ENGINE", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # e.g. under `make test`
        env.pop(inherited, None)
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), f"VENV={venv}", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_up_to_date_stamps_build_nothing(venv: Path) -> None:
    done = make(venv, "-n", "install")
    assert done.returncode == 0, done.stderr
    assert INSTALL_KERNEL not in done.stdout and "-m venv" not in done.stdout


@pytest.mark.parametrize("changed", [
    "kernel/Cargo.toml", "kernel/Cargo.lock", "kernel/pyproject.toml",
    *sorted(str(p.relative_to(REPO)) for p in (KERNEL / "src").rglob("*") if p.is_file()),
])
def test_kernel_rebuilt_when_its_inputs_change(venv: Path, changed: str) -> None:
    done = make(venv, "-n", "-W", changed, "install")
    assert done.returncode == 0, done.stderr
    assert INSTALL_KERNEL in done.stdout
    assert "-m venv" not in done.stdout  # the Python dependencies are not reinstalled for it


def test_new_venv_rebuilds_the_kernel(venv: Path) -> None:
    done = make(venv, "-n", "-W", "pyproject.toml", "install")
    assert "-m venv" in done.stdout and INSTALL_KERNEL in done.stdout


@pytest.mark.parametrize("target", ["run", "test", "test-unit", "bench"])
def test_targets_that_run_python_build_the_kernel_first(venv: Path, target: str) -> None:
    done = make(venv, "-n", "-W", "kernel/Cargo.lock", target)
    assert INSTALL_KERNEL in done.stdout


def test_make_test_runs_the_crate_checks(venv: Path) -> None:
    done = make(venv, "-n", "test")
    assert "cargo test --locked" in done.stdout
    assert "cargo clippy --locked --features python -- -D warnings" in done.stdout
    assert done.stdout.index("cargo test") < done.stdout.index("pytest")


@pytest.fixture
def path_without_cargo(tmp_path: Path) -> str:
    """PATH without the directories holding cargo (and with what make and pip need)."""
    dirs = [d for d in os.environ["PATH"].split(os.pathsep)
            if d and not (Path(d) / "cargo").exists()]
    path = os.pathsep.join(dirs)
    assert shutil.which("cargo", path=path) is None and shutil.which("make", path=path)
    return path


@pytest.mark.parametrize("target", ["kernel", "test-kernel"])
def test_no_cargo_is_one_clear_line(venv: Path, path_without_cargo: str, target: str) -> None:
    (venv / ".kernel").unlink()
    done = make(venv, target, path=path_without_cargo)
    assert done.returncode != 0
    message = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert message == ["make: cargo not found: install Rust (https://rustup.rs) to build the kernel,"
                       " or run with PROMO_ENGINE=python"]
    assert not (venv / ".kernel").exists()


def test_no_cargo_with_the_python_engine_goes_on(venv: Path, path_without_cargo: str) -> None:
    (venv / ".kernel").unlink()
    done = make(venv, "kernel", "PROMO_ENGINE=python", path=path_without_cargo)
    assert done.returncode == 0, done.stderr
    assert "skipped: PROMO_ENGINE=python" in done.stderr
    assert not (venv / ".kernel").exists()  # built once cargo is there


def test_crate_gates_pyo3_behind_the_python_feature() -> None:
    cargo = tomllib.loads((KERNEL / "Cargo.toml").read_text())
    assert cargo["dependencies"]["pyo3"]["optional"] is True
    assert cargo["features"]["python"] == ["dep:pyo3"]
    assert "python" not in cargo["features"].get("default", [])


def test_maturin_builds_the_bindings_abi3_from_the_lock() -> None:
    project = tomllib.loads((KERNEL / "pyproject.toml").read_text())
    assert project["build-system"]["requires"] == ["maturin==1.16.0"]
    maturin = project["tool"]["maturin"]
    assert maturin["module-name"] == "promotions_kernel"
    assert set(maturin["features"]) == {"python", "pyo3/extension-module", "pyo3/abi3-py311"}
    assert maturin["locked"] is True
    assert (KERNEL / "Cargo.lock").is_file()
