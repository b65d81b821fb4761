"""Kafka source and sinks.

The source yields one `RawBatch` per poll of one Kafka partition (partition name `topic/N`); its
offset lives in Bytewax's snapshots, so the consumer group id is not used for progress. The sink
produces with acks=all and idempotence, waits for every delivery report of a batch, and raises if
any failed: a crash is replayed from recovery, a silent loss is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from operator import methodcaller
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from dataflows import metrics
from dataflows.sources import RawBatch
from promotion.records import OutRecord

log = logging.getLogger(__name__)

#: After an empty poll, wait this long before the next one instead of spinning.
IDLE_POLL = timedelta(milliseconds=20)
_has_error = methodcaller("error")  # a KafkaError (truthy) or None
_offset_of = methodcaller("offset")


class KafkaUnavailable(RuntimeError):
    """The brokers could not be reached, or a topic is missing."""


def list_partitions(config: dict[str, Any], topics: Sequence[str], timeout: float = 15.0) -> list[str]:
    """`topic/N` for every partition of every topic; fails fast with a clear message."""
    admin = AdminClient(config)
    names = []
    for topic in topics:
        try:
            metadata = admin.list_topics(topic, timeout=timeout)
        except KafkaException as error:
            raise KafkaUnavailable(f"cannot reach Kafka at {config.get('bootstrap.servers')}: {error}") from None
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            reason = info.error.str() if info is not None and info.error is not None else "no partitions"
            raise KafkaUnavailable(f"Kafka topic {topic!r} is not usable: {reason}")
        names += [f"{topic}/{n}" for n in sorted(info.partitions)]
    return names


class _KafkaPartition(StatefulSourcePartition[RawBatch, int]):
    def __init__(self, name: str, config: dict[str, Any], start: int, batch_size: int,
                 stop_at_end: bool, resume: int | None) -> None:
        topic, _, number = name.rpartition("/")
        self._name = name
        self._offset = start if resume is None else resume
        consumer_config = dict(config)
        consumer_config["enable.partition.eof"] = stop_at_end
        self._consumer = Consumer(consumer_config)
        self._assigned = TopicPartition(topic, int(number), self._offset)
        self._consumer.assign([self._assigned])
        self._lag = metrics.INPUT_LAG.labels(topic, number)
        self._batch_size = batch_size
        self._stop_at_end = stop_at_end
        self._eof = False
        self._awake: datetime | None = None

    def next_batch(self) -> list[RawBatch]:
        if self._eof:
            raise StopIteration()
        self._awake = None
        messages = self._consumer.consume(self._batch_size, 0)
        if any(map(_has_error, messages)):
            messages = self._without_errors(messages)
        offsets = list(map(_offset_of, messages))
        values = [message.value() or b"" for message in messages]
        if offsets:
            self._offset = offsets[-1] + 1
            _low, high = self._consumer.get_watermark_offsets(self._assigned, cached=True)
            if high >= 0:
                self._lag.set(max(0, high - self._offset))
        if offsets or self._eof:
            return [RawBatch(self._name, offsets, values, final=self._eof)]
        self._awake = datetime.now(timezone.utc) + IDLE_POLL
        return []

    def _without_errors(self, messages: list[Message]) -> list[Message]:
        """The records before an end-of-partition marker, minus transient errors (counted)."""
        kept = []
        for message in messages:
            error = message.error()
            if error is None:
                kept.append(message)
                continue
            if error.code() == KafkaError._PARTITION_EOF:
                self._eof = True
                break
            if error.fatal() or not error.retriable():
                raise RuntimeError(f"consuming {self._name} failed: {error}")
            log.warning("transient error consuming %s: %s", self._name, error)
            metrics.SOURCE_ERRORS.labels(error.name()).inc()
        return kept

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        self._consumer.close()


class KafkaInput(FixedPartitionedSource[RawBatch, int]):
    """Every partition of the given topics; one Bytewax input partition per Kafka partition."""

    def __init__(self, config: dict[str, Any], partitions: Sequence[str], *, start_at_end: bool = False,
                 batch_size: int = 10_000, stop_at_end: bool = False) -> None:
        self._config = config
        self._partitions = list(partitions)
        self._start = OFFSET_END if start_at_end else OFFSET_BEGINNING
        self._batch_size = batch_size
        self._stop_at_end = stop_at_end

    def list_parts(self) -> list[str]:
        return self._partitions

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        return _KafkaPartition(for_part, self._config, self._start, self._batch_size,
                               self._stop_at_end, resume_state)


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge records: the run stops so recovery replays them."""


def produce_all(producer: Producer, topic: str, records: Iterable[OutRecord],
                on_delivery: Callable[[KafkaError | None, Message], None], **partition: int) -> None:
    """Queue every record, waiting for deliveries to drain whenever the local queue is full."""
    produce = producer.produce
    for record in records:
        while True:
            try:
                produce(topic, record.value, record.key, headers=record.headers,
                        on_delivery=on_delivery, **partition)
                break
            except BufferError:
                producer.poll(0.1)


def flush_or_fail(producer: Producer, topic: str, timeout: float, failures: list[str]) -> None:
    """Wait for every delivery report; raise if any record was not acknowledged."""
    remaining = producer.flush(timeout)
    if remaining:
        failures.append(f"{remaining} records not acknowledged within {timeout}s")
    if failures:
        metrics.SINK_FAILURES.labels(topic).inc(len(failures))
        raise DeliveryFailed(f"delivery to Kafka topic {topic!r} failed: {failures[0]}")


class _ProducerPartition(StatelessSinkPartition[tuple[str, list[OutRecord]]]):
    def __init__(self, topic: str, config: dict[str, Any], flush_timeout: float) -> None:
        self._topic = topic
        self._producer = Producer(config)
        self._flush_timeout = flush_timeout
        self._failures: list[str] = []

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self._failures.append(str(error))

    def write_batch(self, items: list[tuple[str, list[OutRecord]]]) -> None:
        for _key, records in items:
            produce_all(self._producer, self._topic, records, self._on_delivery)
        flush_or_fail(self._producer, self._topic, self._flush_timeout, self._failures)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout)


class KafkaOutput(DynamicSink[tuple[str, list[OutRecord]]]):
    """A topic, written by every worker with its own idempotent producer."""

    def __init__(self, topic: str, config: dict[str, Any], flush_timeout: float = 30.0) -> None:
        self._topic = topic
        self._config = {**config, "acks": "all", "enable.idempotence": True}
        self._flush_timeout = flush_timeout

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        return _ProducerPartition(self._topic, self._config, self._flush_timeout)
