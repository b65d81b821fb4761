"""Running the service's image the way the manifests do: uid 10001, read-only root filesystem,
host network (the only network here), a named volume at /var/lib/promotions, a tmpfs at /tmp.

Everything goes through deploy/image/container.sh, the engine `make image` uses (podman here,
docker where a daemon answers); every container and volume a test makes is removed after it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy_helpers import DEPLOY

CONTAINER = DEPLOY / "image" / "container.sh"
USER = "10001:10001"
VOLUME_PATH = "/var/lib/promotions"
#: How the manifests run the dataflow container (readOnlyRootFilesystem, a tmp emptyDir).
LOCKED_DOWN = ("--user", USER, "--read-only", "--tmpfs", "/tmp", "--network", "host")


def container(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CONTAINER), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def checked(*args: str, timeout: float = 180) -> str:
    done = container(*args, timeout=timeout)
    assert done.returncode == 0, f"container {' '.join(args[:3])}: {done.stderr[-3000:]}"
    return done.stdout


class Engine:
    """Names for one test's containers and volumes, all removed by `cleanup`."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.prefix = f"sp-test-{uuid.uuid4().hex[:8]}"
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.pods: list[str] = []

    def volume(self, label: str) -> str:
        name = f"{self.prefix}-{label}"
        checked("volume", "create", name)
        self.volumes.append(name)
        return name

    def mountpoint(self, volume: str) -> Path:
        """Where the volume is on the host (the tests run as root, as podman does here)."""
        return Path(checked("volume", "inspect", "--format", "{{.Mountpoint}}", volume).strip())

    def service(self, label: str, env: dict[str, str], volume: str | None,
                options: Sequence[str] = ()) -> Service:
        name = f"{self.prefix}-{label}"
        self.containers.append(name)
        return Service(self.image, name, env, volume, tuple(options))

    def cleanup(self) -> None:
        for pod in self.pods:
            container("pod", "rm", "-f", "-t", "0", pod)
        for name in self.containers:
            container("rm", "-f", "-t", "0", name)
        for volume in self.volumes:
            container("volume", "rm", "-f", volume)


class Service:
    """One container of the image, started (again) under one name, detached."""

    def __init__(self, image: str, name: str, env: dict[str, str], volume: str | None,
                 options: tuple[str, ...]) -> None:
        self.image, self.name, self.env, self.volume, self.options = image, name, env, volume, options
        self.starts = 0

    def start(self, *args: str) -> None:
        """A new container from the image each time, as a pod restart makes."""
        container("rm", "-f", "-t", "0", self.name)
        mounts = ("-v", f"{self.volume}:{VOLUME_PATH}") if self.volume else ()
        env = [f"--env={key}={value}" for key, value in self.env.items()]
        checked("run", "-d", "--name", self.name, *LOCKED_DOWN, *mounts, *env, *self.options,
                self.image, *args)
        self.starts += 1

    def running(self) -> bool:
        done = container("inspect", "--format", "{{.State.Running}}", self.name)
        return done.stdout.strip() == "true"

    def wait(self, timeout: float = 300) -> int:
        """The exit status, once the container ends."""
        return int(checked("wait", self.name, timeout=timeout).strip().splitlines()[-1])

    def signal(self, name: str) -> None:
        checked("kill", "--signal", name, self.name)

    def kill(self) -> int:
        """SIGKILL, as a node failure or the OOM killer would."""
        self.signal("KILL")
        return self.wait()

    def stop(self, grace: int) -> int:
        """`podman stop`: the image's stop signal, SIGKILL after `grace` seconds."""
        checked("stop", "-t", str(grace), self.name, timeout=grace + 60)
        return self.wait()

    def logs(self) -> str:
        done = container("logs", self.name)
        return done.stdout + done.stderr


def scrape(port: int, timeout: float = 90, host: str = "127.0.0.1",
           logs: Callable[[], str] = str) -> str:
    """GET /metrics once the API server answers with the service's series (it starts with the
    run, after the start-up checks)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
                text = response.read().decode()
            if "\npromotions_" in text:
                return text
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no promotions_ series on {host}:{port}/metrics in {timeout} s:\n"
                                 f"{logs()[-3000:]}")
        time.sleep(0.5)
