"""The image as the service, against the suite's real Kafka broker (host network): the outputs
equal the offline core's; a recovery volume survives kill -9 and `podman stop` with every
notification written exactly once; a 2-process cluster formed from the StatefulSet's hostfile;
/metrics on the API port. Each container runs as the manifests demand (image_helpers)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy_helpers import free_port, k8s_objects
from image_helpers import Engine, Service, scrape
from promotion.decoding import decode_event
from promotion.events import Event
from promotion.generator import GeneratorConfig, generate
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.integration.cluster import committed_epoch
from tests.integration.kafka_helpers import dead_lettered, drain, produce

pytestmark = pytest.mark.kafka
LATENESS_S = 10
STS = k8s_objects()["StatefulSet/session-promotions"]
POD = STS["spec"]["template"]["spec"]
GRACE_S = POD["terminationGracePeriodSeconds"]
STOPPED = ("session-promotions: stopped by {}; "
           "the next start resumes from the recovery store's last snapshot")


def dataset(seed: int, events: int) -> list[bytes]:
    return list(generate(GeneratorConfig(seed=seed, users=max(50, events // 20), events=events,
                                         rate_per_s=20.0, max_disorder_ms=3_000,
                                         duplicate_rate=0.02, bad_rate=0.02)))


def expected_ids(lines: list[bytes]) -> Counter[str]:
    result = run_offline(lines, SessionConfig(lateness_ms=LATENESS_S * 1000),
                         load_rules(DEFAULT_RULES_PATH))
    return Counter(n["notification_id"] for n in result.notifications)


def bad_records(lines: list[bytes]) -> Counter[bytes]:
    return Counter(dead_lettered(line) for line in lines if not isinstance(decode_event(line), Event))


def service_env(bootstrap: str, topics: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "PROMO_MODE": "kafka",
        "PROMO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PROMO_KAFKA_INPUT_TOPICS": topics["in"],
        "PROMO_KAFKA_NOTIFICATIONS_TOPIC": topics["out"],
        "PROMO_KAFKA_DLQ_TOPIC": topics["dlq"],
        "PROMO_KAFKA_LATE_TOPIC": topics["late"],
        "PROMO_ALLOWED_LATENESS_SECONDS": str(LATENESS_S),
        "PROMO_SHARDS": "16",
        "PROMO_BATCH_SIZE": "500",
        "BYTEWAX_DATAFLOW_API_ENABLED": "true",
        "BYTEWAX_DATAFLOW_API_PORT": str(free_port()),
        **extra,
    }


def make_topics(topic_factory: Any, partitions: int) -> dict[str, str]:
    return {"in": topic_factory(partitions), "out": topic_factory(4), "dlq": topic_factory(1),
            "late": topic_factory(1)}


def assert_outputs(bootstrap: str, topics: dict[str, str], lines: list[bytes]) -> None:
    """Every notification id of the offline core exactly once, every bad record dead-lettered
    exactly once: the verdict of the Kafka tests."""
    ids = Counter(dict(m.headers())["notification_id"].decode() for m in drain(bootstrap, topics["out"]))
    expected = expected_ids(lines)
    assert len(expected) > 100
    assert set(ids) == set(expected), f"{len(set(expected) - set(ids))} missing, " \
                                      f"{len(set(ids) - set(expected))} unexpected"
    assert ids == expected, f"{ids.total() - expected.total()} notifications written twice"
    assert Counter(m.value() for m in drain(bootstrap, topics["dlq"])) == bad_records(lines)


def test_service_against_kafka_equals_offline_core(engine: Engine, kafka_bootstrap: str,
                                                   topic_factory: Any) -> None:
    lines = dataset(seed=23, events=8_000)
    topics = make_topics(topic_factory, 4)
    produce(kafka_bootstrap, topics["in"], lines, 4)
    env = service_env(kafka_bootstrap, topics, PROMO_KAFKA_STOP_AT_END="true")
    service = engine.service("solo", env, engine.volume("solo"))
    service.start()
    assert service.wait() == 0, service.logs()[-3000:]
    assert_outputs(kafka_bootstrap, topics, lines)
    assert drain(kafka_bootstrap, topics["late"]) == []  # the generator's disorder is in bounds


def test_late_events_go_to_the_late_topic(engine: Engine, kafka_bootstrap: str,
                                          topic_factory: Any) -> None:
    topics = make_topics(topic_factory, 1)
    base = 1_767_225_600_000
    events = [{"event_id": f"e{i}", "user_id": "u1", "type": "product_view", "ts": base + i * 60_000,
               "source": "catalog", "product_id": "p1"} for i in range(10)]
    events.append({"event_id": "late-one", "user_id": "u2", "type": "add_to_cart", "ts": base,
                   "source": "cart", "product_id": "p2"})
    produce(kafka_bootstrap, topics["in"], [orjson.dumps(e) for e in events], 1)
    env = service_env(kafka_bootstrap, topics, PROMO_KAFKA_STOP_AT_END="true",
                      PROMO_ALLOWED_LATENESS_SECONDS="0")
    service = engine.service("late", env, engine.volume("late"))
    service.start()
    assert service.wait() == 0, service.logs()[-3000:]
    (late,) = drain(kafka_bootstrap, topics["late"])
    assert orjson.loads(late.value())["event"]["event_id"] == "late-one"


def wait_for_snapshot(service: Service, recovery: Path, after: int, timeout: float = 120) -> int:
    """The committed epoch once it passes `after` (the run has made progress since)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        epoch = committed_epoch(recovery) if recovery.is_dir() else 0
        if epoch > after:
            return epoch
        assert service.running(), f"ended before a new snapshot:\n{service.logs()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no snapshot after epoch {after} in {timeout} s")


def test_kill_9_and_podman_stop_resume_exactly_once(engine: Engine, kafka_bootstrap: str,
                                                    topic_factory: Any) -> None:
    """First start creates the store; kill -9 mid-stream; the restart resumes and is stopped by
    `podman stop` within the manifests' grace period; the third start finishes the input."""
    lines = dataset(seed=31, events=60_000)
    topics = make_topics(topic_factory, 2)
    produce(kafka_bootstrap, topics["in"], lines, 2)
    volume = engine.volume("recovery")
    env = service_env(kafka_bootstrap, topics, PROMO_KAFKA_STOP_AT_END="true",
                      PROMO_BATCH_SIZE="20", PROMO_RECOVERY_PARTITIONS="2",
                      BYTEWAX_RECOVERY_DIRECTORY="/var/lib/promotions/recovery",
                      BYTEWAX_SNAPSHOT_INTERVAL="1")
    service = engine.service("recovering", env, volume)
    recovery = engine.mountpoint(volume) / "recovery"

    service.start()
    epoch = wait_for_snapshot(service, recovery, after=1)
    assert "entrypoint: creating 2 recovery partitions" in service.logs()
    assert service.kill() == 137
    assert sorted(p.name for p in recovery.glob("part-*.sqlite3")) == ["part-0.sqlite3",
                                                                       "part-1.sqlite3"]
    assert (recovery / "promotions-store.json").is_file()

    service.start()
    wait_for_snapshot(service, recovery, after=epoch + 1)
    logs = service.logs()
    assert "creating" not in logs, logs[-3000:]  # the store is reused, not made again
    assert service.stop(GRACE_S) == 0, service.logs()[-3000:]  # not SIGKILLed after the grace
    assert service.logs().strip().splitlines()[-1] == STOPPED.format("SIGINT")
    partial = drain(kafka_bootstrap, topics["out"])

    service.start()
    assert service.wait() == 0, service.logs()[-3000:]
    assert 0 < len(partial) < expected_ids(lines).total()
    assert_outputs(kafka_bootstrap, topics, lines)


def test_metrics_on_the_api_port_and_sigterm(engine: Engine, kafka_bootstrap: str,
                                             topic_factory: Any) -> None:
    """A running service answers /metrics with its own series; SIGTERM (what a runtime that
    ignores the image's STOPSIGNAL sends) ends it with one line and exit 0."""
    lines = dataset(seed=7, events=2_000)
    topics = make_topics(topic_factory, 1)
    produce(kafka_bootstrap, topics["in"], lines, 1)
    env = service_env(kafka_bootstrap, topics,
                      BYTEWAX_RECOVERY_DIRECTORY="/var/lib/promotions/recovery")
    service = engine.service("metrics", env, engine.volume("metrics"))
    service.start()
    text = scrape(int(env["BYTEWAX_DATAFLOW_API_PORT"]))
    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
              if line.startswith("promotions_")}
    assert {"promotions_open_sessions", "promotions_events_late_total"} <= series, sorted(series)
    service.signal("TERM")
    assert service.wait(timeout=GRACE_S) == 0, service.logs()[-3000:]
    assert service.logs().strip().splitlines()[-1] == STOPPED.format("SIGTERM")


def manifest_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal env values in the StatefulSet (fieldRefs and secrets left out)."""
    return {var["name"]: str(var["value"]) for var in container.get("env", []) if "value" in var}


def hostfile_from_init_container(engine: Engine, directory: Path, namespace: str,
                                 port: int) -> list[str]:
    """Run the `hostfile` init container's command from the manifest in the image, as uid
    10001 on a read-only root, into `directory` (its emptyDir)."""
    (init,) = [c for c in POD["initContainers"] if c["name"] == "hostfile"]
    (mount,) = [m["mountPath"] for m in init["volumeMounts"] if m["name"] == "hostfile"]
    directory.mkdir()
    directory.chmod(0o777)  # an emptyDir is writable by the pod's user
    env = manifest_env(init) | {"POD_NAMESPACE": namespace, "CLUSTER_PORT": str(port)}
    runner = engine.service("hostfile", env, None, ["-v", f"{directory}:{mount}",
                                                   "--entrypoint", init["command"][0]])
    runner.start(*init["command"][1:])
    assert runner.wait() == 0, runner.logs()
    return (directory / "hostfile.txt").read_text().split()


def test_two_process_cluster_from_the_hostfile(engine: Engine, kafka_bootstrap: str,
                                               topic_factory: Any, tmp_path: Path) -> None:
    """Two containers, each told only its pod name, find their process id and peers the way the
    StatefulSet's pods do: the init container's hostfile, names resolving to loopback addresses
    (127.0.0.1 and 127.0.0.2: one host network, so each process needs its own address for the
    one cluster port). Process 0 creates the store, process 1 holds none."""
    lines = dataset(seed=23, events=8_000)
    topics = make_topics(topic_factory, 4)
    produce(kafka_bootstrap, topics["in"], lines, 4)
    (main,) = [c for c in POD["containers"] if c["name"] == "dataflow"]
    hostfile_dir = tmp_path / "hostfile"
    addresses = hostfile_from_init_container(engine, hostfile_dir, "test", free_port())
    name, replicas = STS["metadata"]["name"], STS["spec"]["replicas"]
    assert [a.split(".")[0] for a in addresses] == [f"{name}-{i}" for i in range(replicas)]
    hosts = [f"--add-host={a.rsplit(':', 1)[0]}:127.0.0.{i + 1}" for i, a in enumerate(addresses)]
    (mount,) = [m["mountPath"] for m in main["volumeMounts"] if m["name"] == "hostfile"]
    pods = []
    for i in range(replicas):
        env = manifest_env(main) | service_env(kafka_bootstrap, topics,
                                               PROMO_KAFKA_STOP_AT_END="true",
                                               PROMO_RECOVERY_PARTITIONS="4")
        env |= {"BYTEWAX_POD_NAME": f"{name}-{i}", "BYTEWAX_SNAPSHOT_INTERVAL": "5"}
        pod = engine.service(f"pod{i}", env, engine.volume(f"pod{i}"),
                             [*hosts, "-v", f"{hostfile_dir}:{mount}:ro"])
        pod.start()
        pods.append(pod)
    for pod in pods:
        assert pod.wait() == 0, pod.logs()[-3000:]
    assert "creating 4 recovery partitions" in pods[0].logs()
    assert "process 1 holds no recovery partitions" in pods[1].logs()
    assert_outputs(kafka_bootstrap, topics, lines)
