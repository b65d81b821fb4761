"""Shared helpers of the benchmark: timing, child processes with their own peak RSS, the job."""

from __future__ import annotations

import gc
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
JOB = [PY, "-m", "bytewax.run", "dataflows.promotions"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ProcResult:
    seconds: float  # wall time from spawn to exit
    returncode: int
    max_rss_bytes: int  # peak resident set size of this process alone (sampled VmHWM)
    cpu_seconds: float  # user + system CPU
    stderr: str = ""


@dataclass
class Cluster:
    """`processes` job processes started together; waits for all, each with its own rusage."""

    commands: list[list[str]]
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    began: float = 0.0

    logs: list[Any] = field(default_factory=list)
    results: dict[int, ProcResult] = field(default_factory=dict)
    peak_rss: dict[int, int] = field(default_factory=dict)

    def start(self) -> Cluster:
        """Start the processes; with several, each once the ones before it listen.

        Timely (under Bytewax) has process i connect to every process before it, retrying each
        second when one is not listening yet: started together, a 2-process run took either
        0.35 s or 1.35 s to start, whichever process won the race. The wait (for the listening
        socket in /proc/net/tcp, no connection made) removes that coin toss from the figures;
        the wall time still counts from the first spawn."""
        self.logs = [tempfile.TemporaryFile() for _ in self.commands]  # a pipe could fill and block
        self.began = time.perf_counter()
        ports = _cluster_ports(self.commands[0])
        self.procs = []
        for i, (c, log_file) in enumerate(zip(self.commands, self.logs)):
            if i > 0 and i - 1 < len(ports):
                _wait_listening(ports[: i], self.procs)
            self.procs.append(subprocess.Popen(c, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                               stderr=log_file, start_new_session=True))
        return self

    def stderr_of(self, i: int) -> str:
        log_file = self.logs[i]
        log_file.seek(0)
        return log_file.read()[-3000:].decode("utf-8", "replace")

    def poll(self) -> bool:
        """Sample peak RSS of running processes; reap exited ones (os.wait4 for their CPU time).

        Peak RSS is the kernel's VmHWM of the process's own address space, sampled while it runs:
        rusage's ru_maxrss is no good here, as a child's count starts from the parent's RSS at
        fork and survives exec.
        """
        for i, proc in enumerate(self.procs):
            if proc.returncode is not None:
                continue
            self.peak_rss[i] = max(self.peak_rss.get(i, 0), proc_peak_rss_bytes(proc.pid))
            done, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if done == 0:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.results[i] = ProcResult(
                time.perf_counter() - self.began, proc.returncode, self.peak_rss.get(i, 0),
                usage.ru_utime + usage.ru_stime, self.stderr_of(i))
        return bool(self.results)

    def wait(self, timeout: float) -> list[ProcResult]:
        """Reap every process; if `timeout` seconds pass (from this call), kill them all and raise."""
        deadline = time.perf_counter() + timeout
        while len(self.results) < len(self.procs):
            self.poll()
            if len(self.results) < len(self.procs):
                if time.perf_counter() > deadline:
                    self.kill()
                    raise TimeoutError(f"job did not finish within {timeout:.0f}s: {self.commands[0]}")
                time.sleep(0.01)
        return [self.results[i] for i in range(len(self.procs))]

    def interrupt(self) -> None:
        """SIGTERM, which the job treats as Ctrl-C. Not SIGINT: a bench started in the background
        by a shell ignores SIGINT, and so would the jobs it starts."""
        for p in self.procs:
            if p.returncode is None:  # not poll(): wait4 must be the one to reap
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def kill(self) -> None:
        for p in self.procs:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # its own session: only this job's processes
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(p.pid, 0)
                except ChildProcessError:
                    pass


def _cluster_ports(command: list[str]) -> list[int]:
    """The ports of a cluster command's `-a host:port;host:port...` (none for one process)."""
    if "-a" not in command:
        return []
    return [int(a.rsplit(":", 1)[1]) for a in command[command.index("-a") + 1].split(";")]


def _listening_ports() -> set[int]:
    ports = set()
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table_path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def _exited(pid: int) -> bool:
    """A zombie or gone (without reaping it: `Cluster.poll` does, for its rusage)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_listening(ports: list[int], procs: list[subprocess.Popen], timeout: float = 15) -> None:
    """Until every port listens (or a process exited, or `timeout`: then go on regardless)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if set(ports) <= _listening_ports() or any(_exited(p.pid) for p in procs):
            return
        time.sleep(0.002)


def job_commands(processes: int, module: str = "dataflows.promotions",
                 runner: str = "bytewax.run") -> list[list[str]]:
    base = [PY, "-m", runner, module]
    if processes == 1:
        return [base]
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
    return [base + ["-i", str(i), "-a", addresses] for i in range(processes)]


def run_job(env: dict[str, str], processes: int = 1, timeout: float = 900,
            module: str = "dataflows.promotions", runner: str = "bytewax.run") -> list[ProcResult]:
    """Run the job to completion; raises with its stderr if any process fails."""
    cluster = Cluster(job_commands(processes, module, runner), {**os.environ, **env}).start()
    results = cluster.wait(timeout)
    for r in results:
        if r.returncode != 0:
            raise RuntimeError(f"job failed ({r.returncode}):\n{r.stderr}")
    return results


def file_env(input_path: Path, output: Path, **extra: Any) -> dict[str, str]:
    env = {
        "PROMO_MODE": "file",
        "PROMO_INPUT": str(input_path),
        "PROMO_OUTPUT": str(output),
        "PROMO_REJECTS_OUTPUT": os.devnull,
        "PROMO_LATE_OUTPUT": os.devnull,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def count_lines(path: Path) -> int:
    if not path.exists():  # the file sink opens its file with the first record
        return 0
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def proc_peak_rss_bytes(pid: int) -> int:
    """VmHWM of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return times, result


def rate(events: int, seconds: float) -> int:
    return round(events / seconds) if seconds > 0 else 0


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def fmt_rate(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextmanager
def job_gc_policy() -> Iterator[None]:
    """In-process measurements under the job's garbage-collector policy: automatic collection off
    (dataflows/gc_tuning.py), so they compare with the job's figures."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def shard_cores(factory: Any, config: Any, partition: str, keys: list[str], rules: Any) -> dict[str, Any]:
    """One shard core per state key (either engine's factory), deciding with `rules`, as the
    dataflow's session step builds them."""
    cores = {key: factory(config, [partition], 0, None) for key in keys}
    for core in cores.values():
        core.use_rules(rules)
    return cores
