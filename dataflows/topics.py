"""`promotions topics create`: the topics the service reads and writes, named by its settings.

Idempotent: a topic that exists already is reported and left as it is (its partition count is
never changed: partitions are the unit of input parallelism and of per-user ordering).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from dataflows.settings import Settings


class TopicsError(RuntimeError):
    """The brokers refused or could not be reached: one line for the operator."""


def service_topics(settings: Settings) -> list[str]:
    """Input topics, then notifications, dead letters and late events (no repeats)."""
    names = [*settings.input_topics, settings.kafka_notifications_topic, settings.kafka_dlq_topic,
             settings.kafka_late_topic]
    return list(dict.fromkeys(names))


def create_topics(config: dict[str, Any], names: Sequence[str], partitions: int,
                  replication_factor: int, timeout: float = 30.0) -> dict[str, str]:
    """Create each missing topic; `{name: "created" | "exists"}`."""
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=timeout)  # fail fast, with the address, when nothing answers
    except KafkaException as error:
        raise TopicsError(f"cannot reach Kafka at {config.get('bootstrap.servers')}: {error}") from None
    new = [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
           for name in names]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    outcome = {}
    for name in names:
        try:
            futures[name].result(timeout)
            outcome[name] = "created"
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicsError(f"cannot create topic {name!r}: {error.args[0].str()}") from None
            outcome[name] = "exists"
    return outcome
