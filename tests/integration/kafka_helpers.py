"""Producing datasets to, running the dataflow against, and draining a real Kafka broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from promotion.decoding import decode_event
from promotion.records import dead_letter_raw
from promotion.routing import RejectedRecord

ROOT = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, values: Sequence[bytes], partitions: int) -> None:
    """Round-robin over partitions, keeping each partition in arrival order."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, partition=i % partitions)
                break
            except BufferError:  # local queue full: wait for deliveries
                producer.poll(0.05)
    assert producer.flush(60) == 0


def drain(bootstrap: str, topic: str, timeout: float = 60.0) -> list:
    """Every message currently in the topic (up to the high-water marks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-drain",
                         "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=10)
    parts = sorted(metadata.topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out, done = [], {p for p, end in ends.items() if end == 0}
    import time

    deadline = time.monotonic() + timeout
    while len(done) < len(parts) and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error():
                continue
            out.append(message)
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
    consumer.close()
    assert len(done) == len(parts), f"could not drain {topic}"
    return out


def topic_size(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (the sum of its partitions' end offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-size"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in parts)
    finally:
        consumer.close()


def dead_lettered(line: bytes) -> bytes:
    """The dead-letter topic's value for a malformed input record (oversized ones are cut)."""
    return dead_letter_raw("topic/0", 0, RejectedRecord(0, line, decode_event(line))).value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_dataflow(env: dict[str, str], processes: int = 1, workers: int = 1,
                 timeout: float = 300, extra_args: Sequence[str] = ()) -> list[subprocess.CompletedProcess]:
    """Run `python -m bytewax.run dataflows.promotions` as a cluster of local processes."""
    full_env = {**os.environ, **env}
    base = [sys.executable, "-m", "bytewax.run", "dataflows.promotions", "-w", str(workers), *extra_args]
    if processes == 1:
        commands = [base]
    else:
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        commands = [base + ["-i", str(i), "-a", addresses] for i in range(processes)]
    running = [subprocess.Popen(c, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for proc, command in zip(running, commands):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in running:
                p.kill()
            raise
        results.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return results
