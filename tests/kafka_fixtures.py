"""Kafka fixtures, registered suite-wide by tests/conftest.py: the integration tests and the
image tests (tests/deploy) share one broker per pytest session.

``kafka_bootstrap`` (session): bootstrap servers string.
  * ``KAFKA_BOOTSTRAP_SERVERS`` set -> that external broker is used as is.
  * otherwise a local single-node KRaft broker is started from
    ``deploy/kafka-local/kafka_local.py`` (jars cached in ``.kafka-local/lib``; data in a
    per-session ``.kafka-local-test/session-*`` dir, or ``$KAFKA_LOCAL_TEST_DIR`` if set) and
    stopped (dir removed) at session end. Per-session dirs let concurrent pytest runs coexist.
``kafka_broker``: the restartable local ``Broker`` (``.restart()``, ``.stop()``, ``.start()``).
  Skips ONLY when an external broker is configured, since we cannot restart that one.
  After each test it makes sure the broker is running again, so a failed restart test
  does not break the rest of the session.
``topic_factory``: ``create(partitions=1, ...) -> name`` makes a uniquely named topic, waits
  until all partitions have a leader, and deletes it after the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = REPO_ROOT / "deploy" / "kafka-local" / "kafka_local.py"


def _load_kafka_local() -> ModuleType:
    """Import by path: deploy/kafka-local is not a package (and has a dash in its name)."""
    spec = importlib.util.spec_from_file_location("kafka_local", KAFKA_LOCAL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def _session_state_dir(kl: ModuleType) -> Path:
    """A private state dir per pytest session, so concurrent sessions never share a broker.

    Dirs of earlier sessions whose broker is gone (e.g. pytest was killed) are removed.
    """
    if os.environ.get("KAFKA_LOCAL_TEST_DIR"):
        return Path(os.environ["KAFKA_LOCAL_TEST_DIR"])
    root = REPO_ROOT / ".kafka-local-test"
    root.mkdir(exist_ok=True)
    (root / ".gitignore").write_text("*\n")
    for old in root.glob("session-*"):
        if time.time() - old.stat().st_mtime > 600 and kl.broker_status(old) is None:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="session-", dir=root))


@pytest.fixture(scope="session")
def _local_kafka() -> Iterator[Any | None]:
    """The local Broker, or None when KAFKA_BOOTSTRAP_SERVERS points at an external one."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    kl = _load_kafka_local()
    state_dir = _session_state_dir(kl)
    broker = kl.start_broker(
        state_dir,
        fresh=True,  # new cluster per session: no topics/offsets leak between runs
        lib_dir=kl.DEFAULT_STATE_DIR / "lib",  # share the jar cache with `kafka_local.py start`
        die_with_parent=True,  # no orphaned JVM if pytest is killed
        jvm_opts=["-XX:TieredStopAtLevel=1"],  # C1 only: faster (re)start, less CPU on 2 cores
        timeout=float(os.environ.get("KAFKA_LOCAL_TIMEOUT", "90")),
    )
    try:
        yield broker
    finally:
        broker.stop()
        if not os.environ.get("KAFKA_LOCAL_TEST_DIR"):
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(_local_kafka: Any | None) -> str:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external
    assert _local_kafka is not None
    return str(_local_kafka.bootstrap)


@pytest.fixture
def kafka_broker(_local_kafka: Any | None) -> Iterator[Any]:
    """Restartable local broker; skipped when an external broker is used."""
    if _local_kafka is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: external broker cannot be restarted")
    yield _local_kafka
    if not _local_kafka.is_running():
        _local_kafka.start()


@pytest.fixture
def admin_client(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def topic_factory(
    request: pytest.FixtureRequest, admin_client: AdminClient
) -> Iterator[Callable[..., str]]:
    """Create unique topics; they are deleted (best effort) after the test."""
    created: list[str] = []
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:120]

    def create(
        partitions: int = 1,
        *,
        replication_factor: int = -1,  # broker default: 1 locally, whatever an external uses
        config: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> str:
        name = f"it-{base}-{uuid.uuid4().hex[:8]}"
        topic = NewTopic(name, num_partitions=partitions,
                         replication_factor=replication_factor, config=config or {})
        admin_client.create_topics([topic], operation_timeout=timeout)[name].result(timeout)
        created.append(name)
        deadline = time.monotonic() + timeout
        while True:  # CreateTopics returns before every partition has a leader
            md = admin_client.list_topics(name, timeout=timeout).topics.get(name)
            if (md is not None and md.error is None and len(md.partitions) == partitions
                    and all(p.leader >= 0 for p in md.partitions.values())):
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} not ready after {timeout}s: {md}")
            time.sleep(0.1)

    yield create
    if created:
        for future in admin_client.delete_topics(created, operation_timeout=10).values():
            try:
                future.result(15)
            except Exception:  # noqa: BLE001 - cleanup must not mask the test result
                pass
