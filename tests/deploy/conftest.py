"""Fixtures for the deployment tests (tests/deploy).

Tools the tests need but the project does not depend on are installed on first use, never
skipped: Prometheus/promtool through deploy/prometheus/install.sh (apt), a Compose
implementation through deploy/compose/install-validator.sh (apt), and pip-installable linters
into pytest's cache dir (.pytest_cache, git-ignored), so the project's venv stays as pinned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy_helpers import DEPLOY, PROMETHEUS_DIR, REPO, Processes, run_installer
from image_helpers import Engine

# A tag of its own, so the suite never replaces what `make image` built.
IMAGE_TAG = "session-promotions:test"


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (and prometheus) on PATH, installed by the project's own script if missing."""
    run_installer(PROMETHEUS_DIR / "install.sh")
    return "promtool"


@pytest.fixture(scope="session")
def prometheus_bin(promtool: str) -> str:
    return "prometheus"


@pytest.fixture(scope="session")
def compose_cmd() -> list[str]:
    """`docker compose` or `docker-compose`, installed by the project's script if missing."""
    return run_installer(DEPLOY / "compose" / "install-validator.sh").split()


@pytest.fixture(scope="session")
def pip_tools(pytestconfig: pytest.Config) -> Any:
    """install(requirement, executable) -> path of a pip-installed tool in pytest's cache."""
    cache = getattr(pytestconfig, "cache", None)  # None under `-p no:cacheprovider`
    root = cache.mkdir("deploy-tools") if cache else Path(tempfile.gettempdir()) / "session-promotions-tools"

    def install(requirement: str, executable: str) -> tuple[Path, dict[str, str]]:
        target = root / requirement.replace("==", "-")
        exe = target / "bin" / executable
        if not exe.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(target), requirement],
                check=True, timeout=600,
            )
        env = {**os.environ, "PYTHONPATH": str(target)}
        return exe, env

    return install


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The image, built once per session by `make image`'s script (cached layers make a rebuild
    after a Python-only change take seconds)."""
    start = time.monotonic()
    done = subprocess.run(["bash", str(DEPLOY / "image" / "build.sh")],
                          env={**os.environ, "IMAGE": IMAGE_TAG}, cwd=REPO, capture_output=True,
                          text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"image build failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    print(f"image {IMAGE_TAG} built in {time.monotonic() - start:.0f} s")
    yield IMAGE_TAG


@pytest.fixture
def engine(image: str) -> Iterator[Engine]:
    """Containers, pods and volumes of one test, removed after it."""
    made = Engine(image)
    try:
        yield made
    finally:
        made.cleanup()
