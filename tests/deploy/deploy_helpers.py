"""Paths and helpers shared by the deployment tests (fixtures live in conftest.py)."""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
DASHBOARD = GRAFANA_DIR / "session-promotions.json"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
# Owned by another part of the project (the local broker for integration tests).
NOT_OURS = DEPLOY / "kafka-local"


def deploy_files(*suffixes: str) -> list[Path]:
    """Our files under deploy/ with one of the suffixes (kafka-local excluded)."""
    return sorted(
        p for p in DEPLOY.rglob("*")
        if p.is_file() and p.suffix in suffixes and NOT_OURS not in p.parents
    )


def yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s, keyed "Kind/name"."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml_docs(path):
            key = f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"
            assert key not in objects, f"{key} defined twice"
            objects[key] = doc
    return objects


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Child-side: get SIGKILLed if pytest dies, so no server outlives a killed test run."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Processes:
    """Processes started by one test; all stopped (by pid) at teardown."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent, **kwargs)
        out.close()  # the child holds its own copy
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Bytewax and Prometheus both exit cleanly
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()



def run_installer(script: Path) -> str:
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()
