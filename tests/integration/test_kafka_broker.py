"""Smoke tests proving the broker behind ``kafka_bootstrap`` really works."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

pytestmark = pytest.mark.kafka


def test_produce_consume_roundtrip(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(4)
    producer = Producer({
        "bootstrap.servers": kafka_bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    sent = {f"key-{i}": f"value-{i}" for i in range(100)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "messages still in flight after 30s"
    producer.close()
    assert errors == []

    consumer = Consumer({
        "bootstrap.servers": kafka_bootstrap,
        "group.id": f"it-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    })
    # assign() instead of subscribe(): no group rebalance needed, reads from the start.
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)])
    received: dict[str, str] = {}
    partitions: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key = msg.key().decode()
            assert key not in received, f"duplicate {key}"
            received[key] = msg.value().decode()
            partitions.add(msg.partition())
    finally:
        consumer.close()

    assert received == sent
    assert partitions == {0, 1, 2, 3}  # keyed messages spread over all partitions


def _auto_create_enabled(bootstrap: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    broker_id = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    configs = admin.describe_configs([resource])[resource].result(10)
    return configs["auto.create.topics.enable"].value == "true"


def test_produce_to_missing_topic_fails_when_auto_create_off(kafka_bootstrap: str) -> None:
    """Auto-create is off, so the broker must report the topic as unknown, not create it."""
    if _auto_create_enabled(kafka_bootstrap):  # only possible with an external broker
        pytest.skip("broker has auto.create.topics.enable=true")
    producer = Producer({
        "bootstrap.servers": kafka_bootstrap,
        "acks": "all",
        "message.timeout.ms": 10_000,
        # librdkafka keeps an unseen topic "pending" this long before failing its messages
        # with UNKNOWN_TOPIC_OR_PART (else they'd just time out after message.timeout.ms).
        "topic.metadata.propagation.max.ms": 1_000,
    })
    errors: list[KafkaError] = []
    producer.produce(f"it-missing-{uuid.uuid4().hex}", value=b"x",
                     on_delivery=lambda err, _msg: errors.append(err))
    start = time.monotonic()
    assert producer.flush(20) == 0
    elapsed = time.monotonic() - start
    producer.close()

    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, errors[0]
    assert elapsed < 15


def test_broker_restart_keeps_data(kafka_broker, topic_factory: Callable[..., str]) -> None:  # noqa: ANN001
    """Broker.restart() reuses port and data dir: committed messages survive it."""
    topic = topic_factory(1)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "acks": "all"})
    producer.produce(topic, value=b"before-restart")
    assert producer.flush(30) == 0
    producer.close()  # else it logs connection-refused noise while the broker is down
    old_pid, bootstrap = kafka_broker.pid, kafka_broker.bootstrap

    kafka_broker.restart()
    assert kafka_broker.pid != old_pid and kafka_broker.bootstrap == bootstrap

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"it-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        deadline, msg = time.monotonic() + 30, None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None and msg.error() is None and msg.value() == b"before-restart"
    finally:
        consumer.close()
