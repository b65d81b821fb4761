"""The image, built and run: `make image`'s script (deploy/image/build.sh) with podman here (no
Docker daemon, no image registry: the base is made from Debian's archive and cached), docker
where a daemon answers. Never skipped: podman is installed with apt when missing.

A cold build (base, Rust toolchain, dependencies, kernel) takes a few minutes; later ones reuse
the cached root filesystem and layers and redo only what changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from deploy_helpers import DEPLOY, REPO

BUILD = DEPLOY / "image" / "build.sh"
CONTAINER = DEPLOY / "image" / "container.sh"
# A tag of its own, so the suite never replaces what `make image` built.
TAG = "session-promotions:test"
USER = "10001:10001"


def container(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CONTAINER), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    start = time.monotonic()
    done = subprocess.run(["bash", str(BUILD)], env={**os.environ, "IMAGE": TAG}, cwd=REPO,
                          capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"image build failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    print(f"image {TAG} built in {time.monotonic() - start:.0f} s")
    yield TAG


def test_default_user_is_numeric_non_root(image: str) -> None:
    done = container("image", "inspect", "--format", "{{.Config.User}}", image)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == USER


def test_kernel_imports_as_uid_10001(image: str) -> None:
    code = "import os, promotions_kernel; print(os.getuid(), os.getgid(), promotions_kernel.__name__)"
    done = container("run", "--rm", "--user", USER, "--entrypoint", "python", image, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10001", "10001", "promotions_kernel"]


def test_default_command_prints_notifications(image: str) -> None:
    """File mode on the bundled sample, as the image starts by default (kernel engine)."""
    done = container("run", "--rm", image)
    assert done.returncode == 0, done.stderr[-4000:]
    notifications = [json.loads(line) for line in done.stdout.splitlines()]
    assert notifications, f"no notifications on stdout; stderr:\n{done.stderr[-4000:]}"
    assert {n["action"] for n in notifications} <= {"START_PROMOTION", "STOP_PROMOTION"}
    assert all(n["user_id"] and n["notification_id"] for n in notifications)
    # Records never go to stderr: the sample's malformed ones are in the volume's rejects.jsonl
    # (the working directory is read-only).
    assert '{"kind"' not in done.stderr
    shown = container("run", "--rm", "--entrypoint", "sh", image, "-c",
                      "sh /app/entrypoint.sh >/dev/null && cat /var/lib/promotions/rejects.jsonl")
    assert shown.returncode == 0, shown.stderr[-4000:]
    rejected = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rejected and all(r["kind"] == "rejected" and r["reason"] for r in rejected)


def test_same_notifications_as_the_development_venv(image: str) -> None:
    """The image holds this tree's code and kernel: the same sample gives the same output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "BYTEWAX_"))}
    local = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=180)
    assert local.returncode == 0, local.stderr[-4000:]
    done = container("run", "--rm", image)
    assert done.returncode == 0, done.stderr[-4000:]
    assert sorted(done.stdout.splitlines()) == sorted(local.stdout.splitlines())
