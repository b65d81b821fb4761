"""The image, built and run: `make image`'s script (deploy/image/build.sh) with podman here (no
Docker daemon, no image registry: the base is made from Debian's archive and cached), docker
where a daemon answers. Never skipped: podman is installed with apt when missing. The build is
the session fixture `image` (conftest.py), shared with test_deploy_image_kafka.py and
test_deploy_image_kube.py.

A cold build (base, Rust toolchain, dependencies, kernel) takes a few minutes; later ones reuse
the cached root filesystem and layers and redo only what changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deploy_helpers import REPO
from image_helpers import USER, container


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
