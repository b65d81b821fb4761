"""The service against a real Apache Kafka broker: topics in, topics out, 1 and 2 processes."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from promotion.decoding import decode_event
from promotion.events import Event
from promotion.generator import GeneratorConfig, generate
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.integration.kafka_helpers import dead_lettered, drain, produce, run_dataflow

LATENESS_S = 10


def dataset() -> list[bytes]:
    config = GeneratorConfig(seed=23, users=400, events=8_000, rate_per_s=20.0,
                             max_disorder_ms=3_000, duplicate_rate=0.02, bad_rate=0.02)
    return list(generate(config))


def split_by_service(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Auth-service events to one topic, everything else (and half the garbage) to another."""
    auth, cart = [], []
    for i, line in enumerate(lines):
        event = decode_event(line)
        if isinstance(event, Event):
            (auth if event.source == "auth" else cart).append(line)
        else:
            (auth if i % 2 else cart).append(line)
    return auth, cart


def env_for(bootstrap: str, topics: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "PROMO_MODE": "kafka",
        "PROMO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PROMO_KAFKA_INPUT_TOPICS": f"{topics['auth']},{topics['cart']}",
        "PROMO_KAFKA_NOTIFICATIONS_TOPIC": topics["out"],
        "PROMO_KAFKA_DLQ_TOPIC": topics["dlq"],
        "PROMO_KAFKA_LATE_TOPIC": topics["late"],
        "PROMO_KAFKA_STOP_AT_END": "true",
        "PROMO_ALLOWED_LATENESS_SECONDS": str(LATENESS_S),
        "PROMO_SHARDS": "16",
        "PROMO_BATCH_SIZE": "500",
        **extra,
    }


def headers(message) -> dict[str, bytes]:
    return dict(message.headers() or [])


@pytest.mark.kafka
@pytest.mark.parametrize("processes", [1, 2])
def test_kafka_to_kafka_equals_offline_core(kafka_bootstrap, topic_factory, processes: int) -> None:
    lines = dataset()
    topics = {"auth": topic_factory(4), "cart": topic_factory(4), "out": topic_factory(4),
              "dlq": topic_factory(1), "late": topic_factory(1)}
    auth, cart = split_by_service(lines)
    produce(kafka_bootstrap, topics["auth"], auth, 4)
    produce(kafka_bootstrap, topics["cart"], cart, 4)

    results = run_dataflow(env_for(kafka_bootstrap, topics), processes=processes)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]

    expected = run_offline(lines, SessionConfig(lateness_ms=LATENESS_S * 1000),
                           load_rules(DEFAULT_RULES_PATH))
    notifications = drain(kafka_bootstrap, topics["out"])
    ids = [headers(m)["notification_id"].decode() for m in notifications]
    assert len(expected.notifications) > 300
    assert sorted(ids) == sorted(n["notification_id"] for n in expected.notifications)
    for message in notifications:  # keyed by user, value is the notification
        value = orjson.loads(message.value())
        assert message.key().decode() == value["user_id"]
        assert headers(message)["notification_id"].decode() == value["notification_id"]

    bad = [line for line in lines if not isinstance(decode_event(line), Event)]
    dead = drain(kafka_bootstrap, topics["dlq"])
    assert Counter(m.value() for m in dead) == Counter(dead_lettered(line) for line in bad)
    for message in dead:
        h = headers(message)
        if "dlq.size" in h:  # an oversized record, cut to its first bytes
            assert h["dlq.reason"] == b"oversized" and int(h["dlq.size"]) > len(message.value())
        else:
            assert h["dlq.reason"].decode() == decode_event(message.value()).reason
        assert h["dlq.source.topic"].decode() in (topics["auth"], topics["cart"])
        assert int(h["dlq.source.offset"]) >= 0 and h["dlq.source.kafka_partition"] in b"0123"


@pytest.mark.kafka
def test_late_events_go_to_the_late_topic(kafka_bootstrap, topic_factory) -> None:
    """One input partition, so what is late does not depend on how partitions interleave."""
    topics = {"cart": topic_factory(1), "out": topic_factory(1), "dlq": topic_factory(1),
              "late": topic_factory(1)}
    base = 1_767_225_600_000
    events = [{"event_id": f"e{i}", "user_id": "u1", "type": "product_view", "ts": base + i * 60_000,
               "source": "catalog", "product_id": "p1"} for i in range(10)]
    events.append({"event_id": "late-one", "user_id": "u2", "type": "add_to_cart", "ts": base,
                   "source": "cart", "product_id": "p2"})
    produce(kafka_bootstrap, topics["cart"], [orjson.dumps(e) for e in events] + [b'{"broken'], 1)
    env = env_for(kafka_bootstrap, {**topics, "auth": topics["cart"]},
                  PROMO_KAFKA_INPUT_TOPICS=topics["cart"], PROMO_ALLOWED_LATENESS_SECONDS="0")
    (result,) = run_dataflow(env)
    assert result.returncode == 0, result.stderr[-3000:]
    (late,) = drain(kafka_bootstrap, topics["late"])
    record = orjson.loads(late.value())
    assert (late.key(), headers(late)["reason"]) == (b"u2", b"late")
    assert record["event"]["event_id"] == "late-one" and record["behind_ms"] == 9 * 60_000
    (dead,) = drain(kafka_bootstrap, topics["dlq"])
    assert dead.value() == b'{"broken' and headers(dead)["dlq.reason"] == b"not_json"


@pytest.mark.kafka
@pytest.mark.parametrize("missing", ["out", "dlq", "late"])
def test_a_missing_output_topic_is_one_line_at_start(kafka_bootstrap, topic_factory,
                                                     missing: str) -> None:
    """Found before any input is read, not after a 30 s delivery timeout."""
    topics = {"auth": topic_factory(1), "cart": topic_factory(1), "out": topic_factory(1),
              "dlq": topic_factory(1), "late": topic_factory(1)}
    topics[missing] = f"missing-{missing}-topic"
    (result,) = run_dataflow(env_for(kafka_bootstrap, topics), timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith("session-promotions: invalid configuration: Kafka topic "
                               f"'missing-{missing}-topic' is not usable")
    assert "create the topics first" in lines[0]


@pytest.mark.kafka
def test_two_outputs_on_one_topic_are_refused(kafka_bootstrap, topic_factory) -> None:
    shared = topic_factory(1)
    topics = {"auth": topic_factory(1), "cart": topic_factory(1), "out": shared, "dlq": shared,
              "late": topic_factory(1)}
    (result,) = run_dataflow(env_for(kafka_bootstrap, topics), timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "session-promotions: invalid configuration: PROMO_KAFKA_NOTIFICATIONS_TOPIC, "
        "PROMO_KAFKA_DLQ_TOPIC and PROMO_KAFKA_LATE_TOPIC must be three different topics (each "
        "output partition has one writer)"]


@pytest.mark.kafka
@pytest.mark.parametrize("exactly_once", ["true", "false"])
def test_delivery_failure_fails_the_run(kafka_bootstrap, topic_factory, exactly_once: str) -> None:
    """The broker refuses every notification (too large for the topic): the run fails loudly."""
    topics = {"auth": topic_factory(1), "cart": topic_factory(1),
              "out": topic_factory(1, config={"max.message.bytes": "64"}),
              "dlq": topic_factory(1), "late": topic_factory(1)}
    events = [{"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "ts": 1_767_225_600_000,
               "source": "cart", "product_id": "p1"},
              {"event_id": "e2", "user_id": "u1", "type": "logout", "ts": 1_767_225_601_000,
               "source": "auth"}]
    produce(kafka_bootstrap, topics["cart"], [orjson.dumps(e) for e in events], 1)
    env = env_for(kafka_bootstrap, topics, PROMO_KAFKA_EXACTLY_ONCE=exactly_once,
                  PROMO_KAFKA_PRODUCER_CONFIG='{"message.timeout.ms": 3000}')
    (result,) = run_dataflow(env, timeout=120)
    assert result.returncode != 0
    assert f"delivery to Kafka topic {topics['out']!r} failed" in result.stderr


@pytest.mark.kafka
def test_unreachable_broker_is_a_clear_configuration_error(topic_factory) -> None:
    (result,) = run_dataflow({"PROMO_MODE": "kafka", "PROMO_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                              "PROMO_KAFKA_CONSUMER_CONFIG": "{}"}, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("session-promotions: invalid configuration: cannot reach Kafka at 127.0.0.1:1")


@pytest.mark.kafka
def test_a_future_timestamp_is_dead_lettered_and_later_events_are_on_time(
        kafka_bootstrap, topic_factory) -> None:
    """Issue 14: a clock-skewed producer's event (a day ahead of the wall clock) goes to the DLQ
    as future_timestamp and does not move event time, so the events after it are not late."""
    import time

    topics = {"cart": topic_factory(1), "out": topic_factory(1), "dlq": topic_factory(1),
              "late": topic_factory(1)}
    base = 1_767_225_600_000
    events = [{"event_id": f"e{i}", "user_id": "u1", "type": "add_to_cart", "ts": base + i * 60_000,
               "source": "cart", "product_id": f"p{i}"} for i in range(10)]
    skewed = orjson.dumps({"event_id": "skewed", "user_id": "u9", "type": "login",
                           "ts": int(time.time() * 1000) + 86_400_000, "source": "auth"})
    values = [orjson.dumps(e) for e in events]
    values.insert(5, skewed)
    produce(kafka_bootstrap, topics["cart"], values, 1)
    env = env_for(kafka_bootstrap, {**topics, "auth": topics["cart"]},
                  PROMO_KAFKA_INPUT_TOPICS=topics["cart"], PROMO_MAX_FUTURE_SECONDS="3600")
    (result,) = run_dataflow(env)
    assert result.returncode == 0, result.stderr[-3000:]
    (dead,) = drain(kafka_bootstrap, topics["dlq"])
    assert dead.value() == skewed and headers(dead)["dlq.reason"] == b"future_timestamp"
    assert b"more than 3600 s ahead of the wall clock" in headers(dead)["dlq.detail"]
    assert drain(kafka_bootstrap, topics["late"]) == []
    (notification,) = drain(kafka_bootstrap, topics["out"])
    value = orjson.loads(notification.value())
    assert value["session"]["events"] == 10 and value["products"] == [f"p{i}" for i in range(10)]
