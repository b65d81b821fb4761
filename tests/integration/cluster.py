"""Run the dataflow as a cluster of real processes that tests can kill -9 and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.kafka_helpers import ROOT, free_port


class Cluster:
    """`processes` x `workers` of `python -m bytewax.run dataflows.promotions`."""

    def __init__(self, env: dict[str, str], processes: int = 1, workers: int = 1,
                 log_dir: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.processes = processes
        self.workers = workers
        self.log_dir = log_dir
        self.running: list[subprocess.Popen] = []
        self.starts = 0

    def start(self) -> None:
        base = [sys.executable, "-m", "bytewax.run", "dataflows.promotions", "-w", str(self.workers)]
        commands = [base]
        if self.processes > 1:
            addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(self.processes))
            commands = [base + ["-i", str(i), "-a", addresses] for i in range(self.processes)]
        self.starts += 1
        self.running = []
        for i, command in enumerate(commands):
            log = subprocess.DEVNULL
            if self.log_dir is not None:
                log = open(self.log_dir / f"run{self.starts}-proc{i}.log", "wb")  # noqa: SIM115
            self.running.append(subprocess.Popen(command, cwd=ROOT, env=self.env,
                                                 stdout=subprocess.DEVNULL, stderr=log))

    def kill(self) -> None:
        """SIGKILL every process, as a node failure would."""
        for proc in self.running:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in self.running:
            proc.wait(timeout=30)

    def finished(self) -> bool:
        return all(proc.poll() is not None for proc in self.running)

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        for proc in self.running:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        return [proc.returncode for proc in self.running]

    def tail(self) -> str:
        if self.log_dir is None:
            return ""
        logs = sorted(self.log_dir.glob(f"run{self.starts}-*.log"))
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)


def init_recovery(directory: Path, partitions: int) -> None:
    """The documented operational command, run for real."""
    subprocess.run([sys.executable, "-m", "dataflows.cli", "recovery", "init", str(directory),
                    str(partitions)], cwd=ROOT, check=True, capture_output=True)


def committed_epoch(directory: Path) -> int:
    """The newest epoch Bytewax has committed in the recovery store (0: no snapshot yet)."""
    import sqlite3

    best = 0
    for part in directory.glob("part-*.sqlite3"):
        with sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT max(commit_epoch) FROM commits").fetchone()
        best = max(best, row[0] or 0)
    return best


def wait_for_new_snapshot(cluster: Cluster, directory: Path, timeout: float = 60) -> bool:
    """Block until a snapshot newer than the current one is committed; False if the run ended."""
    before = committed_epoch(directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if committed_epoch(directory) > before:
            return True
        if cluster.finished():
            return False
        time.sleep(0.05)
    raise AssertionError("no snapshot committed in time")
