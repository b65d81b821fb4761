"""`promotions topics create` against the real broker: the settings' topics, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.integration.kafka_helpers import ROOT


@pytest.fixture
def names(admin_client: AdminClient) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    topics = {"PROMO_KAFKA_INPUT_TOPICS": f"it-auth-{tag},it-cart-{tag}",
              "PROMO_KAFKA_NOTIFICATIONS_TOPIC": f"it-notes-{tag}",
              "PROMO_KAFKA_DLQ_TOPIC": f"it-dlq-{tag}", "PROMO_KAFKA_LATE_TOPIC": f"it-late-{tag}"}
    yield topics
    every = [t for value in topics.values() for t in value.split(",")]
    for future in admin_client.delete_topics(every, operation_timeout=10).values():
        try:
            future.result(15)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test result
            pass


def _create(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROMO_")}
    return subprocess.run([sys.executable, "-m", "dataflows.cli", "topics", "create", *args],
                          cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_creates_the_settings_topics_and_is_idempotent(kafka_bootstrap: str, admin_client: AdminClient,
                                                       names: dict[str, str]) -> None:
    env = {"PROMO_MODE": "kafka", "PROMO_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **names}
    every = [t for value in names.values() for t in value.split(",")]
    first = _create(env, "--partitions", "4", "--replication-factor", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"{name}: created" for name in every]
    metadata = admin_client.list_topics(timeout=30).topics
    assert {name: len(metadata[name].partitions) for name in every} == dict.fromkeys(every, 4)

    again = _create(env, "--partitions", "2")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{name}: exists" for name in every]
    metadata = admin_client.list_topics(timeout=30).topics
    assert len(metadata[every[0]].partitions) == 4  # left as it was


def test_a_refused_topic_is_one_line(kafka_bootstrap: str, names: dict[str, str]) -> None:
    env = {"PROMO_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **names}
    run = _create(env, "--replication-factor", "5")  # one broker
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "cannot create topic" in run.stderr, run.stderr


def test_an_unreachable_broker_is_one_line() -> None:
    run = _create({"PROMO_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "--timeout", "2")
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("cannot reach Kafka at 127.0.0.1:1")
