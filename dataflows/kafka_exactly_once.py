"""Exactly-once output to Kafka without transactions: replays are recognised and dropped.

Every record this service writes has a deterministic id (`promotion.records.record_id`). Each
Kafka partition of an output topic is one Bytewax sink partition, written by one worker, whose
snapshot is the partition's end offset as of that snapshot. After a crash, the input is replayed
from the snapshot, so the records an earlier incarnation wrote after it are produced again. Before
writing, the resumed sink partition reads its Kafka partition from the snapshot's offset to the
current end and keeps those records' ids; a replayed record whose id is among them is dropped, and
the ids are forgotten as the replay passes them. Output is visible as soon as it is acknowledged:
no transaction, no read_committed, no added latency.

Before the first snapshot there is no offset in the store, so the sink partition records the
offset it started at in a small file in the recovery directory before writing anything; a resume
that finds no snapshot reads back from there.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from dataflows import metrics
from dataflows.kafka_io import KafkaUnavailable, flush_or_fail, produce_all
from promotion.records import OutRecord, record_id

log = logging.getLogger(__name__)

Records = tuple[str, list[OutRecord]]  # (routing key, records)


def partition_of(record: OutRecord, partitions: int) -> int:
    """librdkafka's `consistent` partitioner (CRC32 of the key, its default for keyed records);
    records without a key (dead letters) go by their id, so a replay lands where the original did."""
    key = record.key if record.key is not None else record_id(record.headers)
    return zlib.crc32(key or b"") % partitions


def by_output_partition(topic: str, partitions: int) -> Callable[[Records], list[Records]]:
    """A flat_map step: one upstream item split into `(topic/N, records)` per output partition."""

    def split(item: Records) -> list[Records]:
        groups: dict[int, list[OutRecord]] = {}
        for record in item[1]:
            groups.setdefault(partition_of(record, partitions), []).append(record)
        return [(f"{topic}/{number}", records) for number, records in groups.items()]

    return split


class ReplayFilter:
    """Ids an earlier incarnation wrote after the snapshot, each as often as it was written.

    Kept in the sink's snapshots until the replay has passed them: a run resumed from a snapshot
    taken while ids were still pending replays those records too, and the read-back after that
    snapshot would not see them. Ids no record matches for `QUIET_SNAPSHOTS` snapshots in a row
    are from a replay that took another turn (e.g. wall-clock idleness), and are dropped.
    """

    QUIET_SNAPSHOTS = 60

    def __init__(self, written: Counter[bytes]) -> None:
        self._pending = written
        self._quiet = 0
        self._matched = False

    def fresh(self, records: Iterable[OutRecord]) -> list[OutRecord]:
        """The records not written before; a dropped id is forgotten once its copies are used up."""
        pending = self._pending
        if not pending:
            return list(records)
        kept = []
        for record in records:
            ident = record_id(record.headers)
            left = pending.get(ident, 0) if ident is not None else 0
            if left:
                self._matched = True
                if left == 1:
                    del pending[ident]
                else:
                    pending[ident] = left - 1
            else:
                kept.append(record)
        return kept

    def at_snapshot(self) -> dict[bytes, int]:
        """What a resume from this snapshot must still drop."""
        self._quiet = 0 if self._matched else self._quiet + 1
        self._matched = False
        if self._pending and self._quiet >= self.QUIET_SNAPSHOTS:
            log.warning("%d replayed ids were never written again; forgetting them",
                        self._pending.total())
            self._pending.clear()
        return dict(self._pending)


def read_written_ids(config: dict[str, Any], topic: str, partition: int, start: int,
                     timeout: float = 60.0) -> tuple[Counter[bytes], int]:
    """The ids of the records in `topic/partition` from offset `start` to its current end, and
    that end. Records already deleted by retention cannot be read: a warning says how many."""
    consumer = Consumer({**config, "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.wait.max.ms": 10})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        ids: Counter[bytes] = Counter()
        if start >= high:
            return ids, high
        if start < low:
            log.warning("%s/%d: %d records written after the snapshot were deleted by retention; "
                        "their replays are written again", topic, partition, low - start)
        consumer.assign([TopicPartition(topic, partition, max(start, low))])
        position = max(start, low)
        deadline = time.monotonic() + timeout  # moved on whenever a record arrives
        while position < high:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading back {topic}/{partition} from offset {start} "
                                       f"to {high}: no progress for {timeout}s at {position}")
            # Ask for no more than is there, or consume() waits out its timeout for records
            # (or the end-of-partition event, sent after an empty fetch) that never come.
            for message in consumer.consume(min(10_000, high - position), 1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        position = high
                        break
                    if error.fatal() or not error.retriable():
                        raise KafkaUnavailable(f"reading back {topic}/{partition} failed: {error}")
                    continue
                position = message.offset() + 1
                deadline = time.monotonic() + timeout
                ident = record_id(message.headers() or [])
                if ident is not None and position <= high:  # None: not one of ours
                    ids[ident] += 1
        return ids, high
    finally:
        consumer.close()


class StartOffsets:
    """Where each output partition stood when this recovery store first wrote to it.

    Covers a crash before the first snapshot: the store then holds no offset, yet the records
    written before the crash are replayed. One small file per partition, written (and fsynced)
    before the partition's first record, never moved afterwards.
    """

    #: Inside the recovery directory; a new store (`promotions recovery init`) starts without it.
    DIRECTORY = "output-start-offsets"

    def __init__(self, recovery_dir: Path | None) -> None:
        self._dir = None if recovery_dir is None else Path(recovery_dir) / self.DIRECTORY

    def _path(self, part: str) -> Path:
        assert self._dir is not None
        return self._dir / part.replace("/", ".")

    def recorded(self, part: str) -> int | None:
        if self._dir is None:
            return None
        try:
            return int(self._path(part).read_text())
        except FileNotFoundError:
            return None

    def record(self, part: str, offset: int) -> None:
        if self._dir is None:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._path(part)
        staged = path.with_name(path.name + ".tmp")  # per partition: workers record at once
        with staged.open("w") as file:
            file.write(str(offset))
            file.flush()
            os.fsync(file.fileno())
        staged.replace(path)
        directory = os.open(self._dir, os.O_RDONLY)  # the rename itself survives a power loss
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


#: A sink partition's snapshot: the Kafka partition's end offset, and the ids written after an
#: earlier snapshot whose replays have not come by yet (usually none).
SinkState = tuple[int, dict[bytes, int]]


class _ExactlyOncePartition(StatefulSinkPartition[list[OutRecord], SinkState]):
    def __init__(self, part: str, producer_config: dict[str, Any], consumer_config: dict[str, Any],
                 start_offsets: StartOffsets, resume: SinkState | None, flush_timeout: float) -> None:
        topic, _, number = part.rpartition("/")
        self._topic = topic
        self._partition = int(number)
        self._flush_timeout = flush_timeout
        self._failures: list[str] = []
        self._dropped = metrics.REPLAYS_DROPPED.labels(topic)
        began = time.monotonic()
        start, carried = resume if resume is not None else (start_offsets.recorded(part), {})
        if start is None:  # the first start of this store: nothing of ours is in the partition
            written, end = Counter(), _end_offset(consumer_config, topic, self._partition)
            start_offsets.record(part, end)
        else:
            written, end = read_written_ids(consumer_config, topic, self._partition, start)
        written.update(carried)
        self._replays = ReplayFilter(written)
        self._next_offset = end
        took = time.monotonic() - began
        metrics.READBACK_SECONDS.labels(topic).set(took)
        if written:
            log.warning("%s: %d records were written after the snapshot (read back in %.3f s); "
                        "their replays are dropped", part, written.total(), took)
        self._producer = Producer(producer_config)

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append(str(error))
        else:
            self._next_offset = max(self._next_offset, message.offset() + 1)

    def write_batch(self, items: list[list[OutRecord]]) -> None:
        for records in items:
            fresh = self._replays.fresh(records)
            if len(fresh) != len(records):
                self._dropped.inc(len(records) - len(fresh))
            produce_all(self._producer, self._topic, fresh, self._on_delivery,
                        partition=self._partition)
        flush_or_fail(self._producer, self._topic, self._flush_timeout, self._failures)

    def snapshot(self) -> SinkState:
        """The partition's end after every record written so far was acknowledged."""
        return self._next_offset, self._replays.at_snapshot()

    def close(self) -> None:
        self._producer.flush(self._flush_timeout)


def _end_offset(config: dict[str, Any], topic: str, partition: int, timeout: float = 30.0) -> int:
    consumer = Consumer({**config, "enable.auto.commit": False})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
    finally:
        consumer.close()


class ExactlyOnceKafkaOutput(FixedPartitionedSink[list[OutRecord], SinkState]):
    """One sink partition per Kafka partition of `topic`; items are keyed `topic/N`
    (see `by_output_partition`)."""

    def __init__(self, topic: str, partitions: int, producer_config: dict[str, Any],
                 consumer_config: dict[str, Any], recovery_dir: Path | None,
                 flush_timeout: float = 30.0) -> None:
        self._topic = topic
        self._parts = [f"{topic}/{n}" for n in range(partitions)]
        # Bytewax indexes part_fn's value into the sorted set of every partition's name.
        self._index = {part: i for i, part in enumerate(sorted(self._parts))}
        self._producer_config = {**producer_config, "acks": "all", "enable.idempotence": True}
        self._consumer_config = consumer_config
        self._start_offsets = StartOffsets(recovery_dir)
        self._flush_timeout = flush_timeout

    def list_parts(self) -> list[str]:
        return self._parts

    def part_fn(self, item_key: str) -> int:
        return self._index[item_key]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: SinkState | None) -> _ExactlyOncePartition:
        return _ExactlyOncePartition(for_part, self._producer_config, self._consumer_config,
                                     self._start_offsets, resume_state, self._flush_timeout)
