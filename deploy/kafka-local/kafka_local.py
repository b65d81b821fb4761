#!/usr/bin/env python3
"""Single-node KRaft Kafka broker for local development and integration tests.

Stdlib only, so it runs before (or without) the project's virtualenv. Jars come from
Maven Central via ``pom.xml`` next to this file; no Docker and no Kafka tarball needed.

CLI::

    python deploy/kafka-local/kafka_local.py install|start|stop|status [--dir DIR] ...

``start`` prints the bootstrap address (``127.0.0.1:PORT``) on stdout once the broker
answers ApiVersions and Metadata requests; progress and errors go to stderr.

State dir layout (default ``<repo>/.kafka-local``, which is self-gitignored)::

    lib/               jars (copied by mvn; ``lib/.installed`` marks a complete copy)
    data/              KRaft metadata + topic logs
    logs/              server.log (log4j2), broker.out (JVM stdout/stderr), install.log
    server.properties  log4j2.properties  broker.json (ports, cluster id)
    broker.pid         bootstrap          (only while running)

Library use::

    broker = start_broker(Path(".kafka-local-test"), fresh=True)
    broker.bootstrap  # "127.0.0.1:PORT"
    broker.restart()  # same port, same data
    broker.stop()
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
REPO_ROOT = HERE.parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".kafka-local"
HOST = "127.0.0.1"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
INSTALLED_MARKER = ".installed"
# 2-core machine: small fixed heap, G1 with short pauses; everything on the command line so
# no KAFKA_* environment variables or wrapper scripts are involved.
JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dlog4j2.formatMsgNoLookups=true",
]
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # pid -> Popen, so we can reap our own zombies


class KafkaLocalError(RuntimeError):
    """Install/start/stop failed; the message carries the relevant log tail."""


def _log(msg: str) -> None:
    print(f"[kafka-local] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- layout


@dataclasses.dataclass(frozen=True)
class Layout:
    """All paths derived from one state dir, so CLI and library agree."""

    state_dir: Path
    lib_dir: Path

    @classmethod
    def of(cls, state_dir: Path | str | None = None, lib_dir: Path | str | None = None) -> Layout:
        sd = Path(state_dir or DEFAULT_STATE_DIR).resolve()
        return cls(sd, Path(lib_dir).resolve() if lib_dir else sd / "lib")

    data = property(lambda self: self.state_dir / "data")
    logs = property(lambda self: self.state_dir / "logs")
    config = property(lambda self: self.state_dir / "server.properties")
    log4j = property(lambda self: self.state_dir / "log4j2.properties")
    state_file = property(lambda self: self.state_dir / "broker.json")
    pid_file = property(lambda self: self.state_dir / "broker.pid")
    bootstrap_file = property(lambda self: self.state_dir / "bootstrap")
    lock_file = property(lambda self: self.state_dir / ".lock")

    def ensure(self) -> None:
        """Create dirs; a '*' .gitignore keeps state out of git even without a root entry."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        for d in {self.state_dir, self.lib_dir.parent}:
            if d.name.startswith(".kafka-local") or d == self.state_dir:
                gi = d / ".gitignore"
                if not gi.exists():
                    gi.write_text("*\n")


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Serialise install/start/stop between processes (e.g. pytest-xdist workers, CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the JVM: ignore TIME_WAIT
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"<no {path}>"
    return f"--- tail of {path} ---\n" + "\n".join(text[-lines:])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaLocalError("java not found (need JDK/JRE 17+ on PATH or JAVA_HOME)")
    return java


def _classpath(layout: Layout) -> str:
    return str(layout.lib_dir / "*")


# --------------------------------------------------------------------------- install


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def is_installed(layout: Layout) -> bool:
    """Complete iff mvn finished and the marker matches the current pom (version bumps reinstall)."""
    marker = layout.lib_dir / INSTALLED_MARKER
    return marker.is_file() and marker.read_text().strip() == _pom_digest()


def install(
    state_dir: Path | str | None = None,
    lib_dir: Path | str | None = None,
    maven_repo: Path | str | None = None,
) -> Path:
    """Resolve broker jars with mvn into lib_dir once.

    mvn copies into a scratch dir that is renamed into place only after success, so an
    interrupted download never looks installed. mvn uses ~/.m2 unless maven_repo (or env
    KAFKA_LOCAL_MAVEN_REPO) is given.
    """
    layout = Layout.of(state_dir, lib_dir)
    layout.ensure()
    if is_installed(layout):
        return layout.lib_dir
    with _flock(layout.lib_dir.with_name(layout.lib_dir.name + ".lock")):
        if is_installed(layout):  # another process finished while we waited
            return layout.lib_dir
        mvn = shutil.which("mvn")
        if not mvn:
            raise KafkaLocalError("mvn not found on PATH (needed once to resolve Kafka jars)")
        for stale in layout.lib_dir.parent.glob(f"{layout.lib_dir.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted install; we hold the lock
        scratch = layout.lib_dir.with_name(f"{layout.lib_dir.name}.partial-{os.getpid()}")
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={scratch}", "-DincludeScope=runtime"]
        maven_repo = maven_repo or os.environ.get("KAFKA_LOCAL_MAVEN_REPO")
        if maven_repo:
            cmd.append(f"-Dmaven.repo.local={Path(maven_repo).resolve()}")
        log = layout.logs / "install.log"
        _log(f"resolving Kafka jars with mvn into {layout.lib_dir} (first run only)")
        t0 = time.monotonic()
        with open(log, "wb") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if rc != 0 or not any(scratch.glob("kafka_2.13-*.jar")):
            shutil.rmtree(scratch, ignore_errors=True)
            raise KafkaLocalError(f"mvn failed (exit {rc}): {' '.join(cmd)}\n{_tail(log)}")
        (scratch / INSTALLED_MARKER).write_text(_pom_digest() + "\n")
        shutil.rmtree(layout.lib_dir, ignore_errors=True)
        scratch.rename(layout.lib_dir)
        _log(f"installed {len(list(layout.lib_dir.glob('*.jar')))} jars in {time.monotonic() - t0:.1f}s")
    return layout.lib_dir


# --------------------------------------------------------------------------- process helpers


def _read_pid(layout: Layout) -> int | None:
    try:
        return int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_our_broker(pid: int, layout: Layout) -> bool:
    """Guard against PID reuse: only touch a java running kafka.Kafka with *our* config."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return MAIN_CLASS.encode() in argv and str(layout.config).encode() in argv


def _running_pid(layout: Layout) -> int | None:
    pid = _read_pid(layout)
    return pid if pid and _alive(pid) and _is_our_broker(pid, layout) else None


def _wait_exit(pid: int, timeout: float) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM (clean shutdown, flushes logs), then SIGKILL after timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        _log(f"pid {pid} ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 10)
    _CHILDREN.pop(pid, None)


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the broker if the Python process that started it dies (pytest -x, ^C)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------- Kafka wire probe


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    """One request with a v1 (non-flexible) request header; returns the response body."""
    client = b"kafka-local-probe"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    payload = _recv_exact(sock, size)
    if struct.unpack_from(">i", payload)[0] != corr:
        raise ConnectionError("correlation id mismatch")
    return payload[4:]


def probe(host: str, port: int, timeout: float = 2.0) -> bool:
    """True iff the broker answers ApiVersions(v0) and Metadata(v4) lists >=1 broker.

    Metadata v4 is supported by Kafka 1.0 .. 4.x; a broker is only listed once it is
    registered and unfenced, i.e. ready for clients.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            if struct.unpack_from(">h", _call(s, 18, 0, 1, b""))[0] != 0:  # ApiVersions error_code
                return False
            body = _call(s, 3, 4, 2, struct.pack(">ib", 0, 0))  # topics=[], allow_auto_create=false
            (count,) = struct.unpack_from(">i", body, 4)  # after throttle_time_ms
            return count > 0
    except (OSError, struct.error):
        return False


# --------------------------------------------------------------------------- config


def _new_cluster_id() -> str:
    """Same shape as `kafka-storage random-uuid`: urlsafe base64 of 16 bytes, no leading '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _server_properties(layout: Layout, port: int, controller_port: int, auto_create: bool) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(layout.data),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": str(auto_create).lower(),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",  # 50 by default: slow first group join on 2 cores
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",  # tests should not wait 3 s per group
        "log.segment.bytes": str(16 * 1024 * 1024),
        "log.retention.hours": "24",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "delete.topic.enable": "true",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _log4j_properties(layout: Layout) -> str:
    log = layout.logs / "server.log"
    return f"""\
status = warn
# Kafka's own shutdown hook logs until the end; log4j2's hook would cut those lines off.
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _format_storage(layout: Layout, cluster_id: str) -> None:
    """One-time KRaft format (writes meta.properties + bootstrap checkpoint)."""
    log = layout.logs / "format.log"
    cmd = [_java(), "-Xmx256m", "-XX:TieredStopAtLevel=1",
           f"-Dlog4j2.configurationFile={layout.log4j}", "-cp", _classpath(layout),
           STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(layout.config)]
    with open(log, "wb") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if rc != 0:
        raise KafkaLocalError(f"storage format failed (exit {rc})\n{_tail(log)}")


# --------------------------------------------------------------------------- broker


@dataclasses.dataclass
class Broker:
    """A local broker started (or found running) by this module."""

    state_dir: Path
    port: int
    controller_port: int
    pid: int
    auto_create: bool = False
    lib_dir: Path | None = None
    die_with_parent: bool = False
    jvm_opts: tuple[str, ...] = ()

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def layout(self) -> Layout:
        return Layout.of(self.state_dir, self.lib_dir)

    def is_running(self) -> bool:
        return _alive(self.pid) and _is_our_broker(self.pid, self.layout)

    def stop(self, timeout: float = 30) -> bool:
        return stop_broker(self.state_dir, timeout=timeout)

    def start(self, timeout: float = 90) -> Broker:
        """Start again after stop(): same data dir and ports (for broker-restart tests)."""
        new = start_broker(self.state_dir, port=self.port, auto_create=self.auto_create,
                           timeout=timeout, lib_dir=self.lib_dir,
                           die_with_parent=self.die_with_parent, jvm_opts=self.jvm_opts)
        self.pid, self.controller_port = new.pid, new.controller_port
        return self

    def restart(self, timeout: float = 90) -> Broker:
        self.stop()
        return self.start(timeout=timeout)


def _load_state(layout: Layout) -> dict[str, Any]:
    try:
        return dict(json.loads(layout.state_file.read_text()))
    except (OSError, ValueError):
        return {}


def start_broker(
    state_dir: Path | str | None = None,
    port: int | None = None,
    auto_create: bool = False,
    timeout: float = 90,
    *,
    fresh: bool = False,
    lib_dir: Path | str | None = None,
    maven_repo: Path | str | None = None,
    die_with_parent: bool = False,
    jvm_opts: Sequence[str] = (),
) -> Broker:
    """Install if needed, start the broker in the background and wait until it serves clients.

    Reuses data and ports of a previous run in the same state dir unless ``fresh`` (which also
    stops a leftover broker of ours). Returns the already-running broker if its settings match.
    ``jvm_opts`` (then env KAFKA_LOCAL_JVM_OPTS) are appended to JVM_OPTS, so they win;
    e.g. ``-XX:TieredStopAtLevel=1`` starts ~1 s faster but lowers peak throughput.
    """
    layout = Layout.of(state_dir, lib_dir)
    layout.ensure()
    with _flock(layout.lock_file):
        running = _running_pid(layout)
        state = _load_state(layout)
        if running and fresh:
            _log(f"stopping leftover broker pid {running}")
            _terminate(running, 30)
            running = None
        if running:
            if (port not in (None, state.get("port"))) or bool(state.get("auto_create")) != auto_create:
                raise KafkaLocalError(
                    f"broker pid {running} already running in {layout.state_dir} with {state}; stop it first")
            return Broker(layout.state_dir, int(state["port"]), int(state["controller_port"]),
                          running, auto_create, layout.lib_dir, die_with_parent, tuple(jvm_opts))

        install(layout.state_dir, layout.lib_dir, maven_repo)
        if fresh:
            shutil.rmtree(layout.data, ignore_errors=True)
            layout.state_file.unlink(missing_ok=True)
            for f in layout.logs.glob("*"):
                if f.name != "install.log":
                    f.unlink(missing_ok=True)
            state = {}
        formatted = (layout.data / "meta.properties").exists()
        if not formatted:
            state = {}
        port = port or int(state.get("port") or 0) or _free_port()
        cport = int(state.get("controller_port") or 0) or _free_port()
        while cport == port:
            cport = _free_port()
        for p in (port, cport):
            if _port_in_use(p):
                raise KafkaLocalError(f"port {HOST}:{p} is already in use")
        cluster_id = str(state.get("cluster_id") or _new_cluster_id())

        layout.config.write_text(_server_properties(layout, port, cport, auto_create))
        layout.log4j.write_text(_log4j_properties(layout))
        if not formatted:
            _format_storage(layout, cluster_id)
        layout.state_file.write_text(json.dumps(
            {"port": port, "controller_port": cport, "cluster_id": cluster_id,
             "auto_create": auto_create, "lib_dir": str(layout.lib_dir)}, indent=2) + "\n")

        env_opts = shlex.split(os.environ.get("KAFKA_LOCAL_JVM_OPTS", ""))
        cmd = [_java(), *JVM_OPTS, *jvm_opts, *env_opts, f"-Dlog4j2.configurationFile={layout.log4j}",
               f"-Dkafka.logs.dir={layout.logs}", "-cp", _classpath(layout),
               MAIN_CLASS, str(layout.config)]
        t0 = time.monotonic()
        # PDEATHSIG fires when the *thread* that forked exits, so only arm it from the main thread.
        pdeathsig = die_with_parent and threading.current_thread() is threading.main_thread()
        with open(layout.logs / "broker.out", "ab") as out:
            proc = subprocess.Popen(
                cmd, cwd=layout.state_dir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if pdeathsig else None)
        _CHILDREN[proc.pid] = proc
        layout.pid_file.write_text(f"{proc.pid}\n")

        deadline = t0 + timeout
        while not probe(HOST, port):
            failed = None
            if proc.poll() is not None:
                failed = f"broker exited with code {proc.returncode}"
            elif time.monotonic() > deadline:
                failed = f"broker not ready within {timeout:.0f}s"
                _terminate(proc.pid, 10)
            if failed:
                _CHILDREN.pop(proc.pid, None)
                layout.pid_file.unlink(missing_ok=True)
                raise KafkaLocalError(
                    f"{failed} ({HOST}:{port}, state {layout.state_dir})\n"
                    f"{_tail(layout.logs / 'server.log')}\n{_tail(layout.logs / 'broker.out', 20)}")
            time.sleep(0.2)
        layout.bootstrap_file.write_text(f"{HOST}:{port}\n")
        _log(f"broker pid {proc.pid} ready on {HOST}:{port} in {time.monotonic() - t0:.1f}s")
        return Broker(layout.state_dir, port, cport, proc.pid, auto_create,
                      layout.lib_dir, die_with_parent, tuple(jvm_opts))


def stop_broker(state_dir: Path | str | None = None, timeout: float = 30) -> bool:
    """Stop the broker recorded in state_dir's pid file; True if one was running."""
    layout = Layout.of(state_dir)
    with _flock(layout.lock_file):
        pid = _running_pid(layout)
        if pid:
            _terminate(pid, timeout)
        layout.pid_file.unlink(missing_ok=True)
        layout.bootstrap_file.unlink(missing_ok=True)
        return pid is not None


def broker_status(state_dir: Path | str | None = None) -> Broker | None:
    """The running broker of state_dir, or None."""
    layout = Layout.of(state_dir)
    pid = _running_pid(layout)
    state = _load_state(layout)
    if not pid or "port" not in state:
        return None
    return Broker(layout.state_dir, int(state["port"]), int(state["controller_port"]),
                  pid, bool(state.get("auto_create")), Path(state.get("lib_dir") or layout.lib_dir))


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `--dir` works before or after the subcommand without one overriding the other.
    common.add_argument("--dir", type=Path, default=argparse.SUPPRESS,
                        help=f"state dir (default {DEFAULT_STATE_DIR})")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[common])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_install = sub.add_parser("install", parents=[common], help="resolve jars with mvn (once)")
    p_install.add_argument("--maven-repo", type=Path, help="Maven local repo (default ~/.m2/repository)")
    p_start = sub.add_parser("start", parents=[common], help="start in background; print bootstrap")
    p_start.add_argument("--port", type=int, help="PLAINTEXT port (default: previous or a free one)")
    p_start.add_argument("--auto-create", action=argparse.BooleanOptionalAction, default=False,
                         help="auto.create.topics.enable (default: off)")
    p_start.add_argument("--timeout", type=float, default=90, help="readiness timeout, seconds")
    p_start.add_argument("--fresh", action="store_true", help="wipe data/logs first")
    p_start.add_argument("--maven-repo", type=Path, help="Maven local repo (default ~/.m2/repository)")
    p_stop = sub.add_parser("stop", parents=[common], help="SIGTERM, then SIGKILL after --timeout")
    p_stop.add_argument("--timeout", type=float, default=30)
    sub.add_parser("status", parents=[common], help="exit 0 if running, 1 if not")
    args = parser.parse_args(argv)
    state_dir = getattr(args, "dir", None)
    try:
        if args.cmd == "install":
            print(install(state_dir, maven_repo=args.maven_repo))
        elif args.cmd == "start":
            b = start_broker(state_dir, args.port, args.auto_create, args.timeout,
                             fresh=args.fresh, maven_repo=args.maven_repo)
            print(b.bootstrap)
        elif args.cmd == "stop":
            print("stopped" if stop_broker(state_dir, args.timeout) else "not running")
        else:
            b = broker_status(state_dir)
            print(f"running pid={b.pid} bootstrap={b.bootstrap}" if b else "not running")
            return 0 if b else 1
    except KafkaLocalError as e:
        print(f"kafka-local: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
