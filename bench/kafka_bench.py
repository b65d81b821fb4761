"""Kafka to Kafka against a real local broker: throughput per process, scaling, and latency.

* Throughput: a dataset is produced once into a multi-partition input topic (keyed by user); the
  job reads it with `PROMO_KAFKA_STOP_AT_END=true` into fresh output topics. Start-up is measured
  on a topic holding one record per partition.
* Latency: a producer thread offers live-timestamped events at a steady rate while the job runs;
  for each logout, the time from its produce() call to the arrival (at a consumer of the
  notifications topic) of the notification of the session it ended, matched by user_id + session
  end. With `PROMO_ALLOWED_LATENESS_SECONDS=0` a logout's session closes as soon as every input
  partition has an event newer than it, which at 10k events/s is about a millisecond later.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import (
    ROOT,
    Cluster,
    job_commands,
    log,
    proc_cpu_seconds,
    proc_rss_bytes,
    rate,
    run_job,
)
from promotion.timefmt import format_ms
from tests.integration.kafka_helpers import topic_size

KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka_local.py"


def _kafka_local() -> Any:
    """Import deploy/kafka-local/kafka_local.py by path (not a package; dataclasses need the
    module registered in sys.modules before it runs)."""
    if "kafka_local" in sys.modules:
        return sys.modules["kafka_local"]
    spec = importlib.util.spec_from_file_location("kafka_local", KAFKA_LOCAL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def local_broker() -> Iterator[str]:
    """A private broker (own state dir, shared jar cache), stopped at the end."""
    kl = _kafka_local()
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as state_dir:
        began = time.perf_counter()
        broker = kl.start_broker(Path(state_dir), fresh=True, lib_dir=kl.DEFAULT_STATE_DIR / "lib",
                                 die_with_parent=True)
        log(f"broker {broker.bootstrap} ready in {time.perf_counter() - began:.1f}s")
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


class Topics:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self._n = 0

    def create(self, prefix: str, partitions: int = 1) -> str:
        self._n += 1
        name = f"{prefix}-{self._n}-{os.getpid()}"
        futures = self.admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        for future in futures.values():
            future.result(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # metadata visible to clients
            meta = self.admin.list_topics(name, timeout=10).topics.get(name)
            if meta is not None and meta.error is None and len(meta.partitions) == partitions:
                return name
            time.sleep(0.1)
        raise RuntimeError(f"topic {name} not ready")

    def outputs(self) -> dict[str, str]:
        return {
            "PROMO_KAFKA_NOTIFICATIONS_TOPIC": self.create("out"),
            "PROMO_KAFKA_DLQ_TOPIC": self.create("dlq"),
            "PROMO_KAFKA_LATE_TOPIC": self.create("late"),
        }


def produce_file(bootstrap: str, topic: str, path: Path) -> int:
    """Every line of the file, keyed by user_id (a user's events stay in order in one partition)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "acks": "all",
                         "enable.idempotence": True, "compression.type": "lz4"})
    n = 0
    with path.open("rb") as f:
        for line in f:
            value = line.rstrip(b"\n")
            start = value.find(b'"user_id":"') + 11  # generator lines: no spaces
            key = value[start : value.find(b'"', start)] if start > 10 else None
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
    if producer.flush(120):
        raise RuntimeError("input not fully produced")
    return n


def kafka_env(bootstrap: str, input_topic: str, outputs: dict[str, str], **extra: Any) -> dict[str, str]:
    env = {
        "PROMO_MODE": "kafka",
        "PROMO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PROMO_KAFKA_INPUT_TOPICS": input_topic,
        "PROMO_KAFKA_START": "earliest",
        **outputs,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class KafkaRun:
    seconds: float
    notifications: int
    cpu_seconds: float


def run_to_end(bootstrap: str, topics: Topics, input_topic: str, processes: int) -> KafkaRun:
    outputs = topics.outputs()
    env = kafka_env(bootstrap, input_topic, outputs, PROMO_KAFKA_STOP_AT_END="true")
    results = run_job(env, processes=processes, timeout=900)
    notifications = topic_size(bootstrap, outputs["PROMO_KAFKA_NOTIFICATIONS_TOPIC"])
    return KafkaRun(max(r.seconds for r in results), notifications, sum(r.cpu_seconds for r in results))


# -- latency ------------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    offered_per_s: float
    measured_logouts: int
    matched: int
    unmatched: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: logout produced -> notification produced by the job (Kafka CreateTime, ms resolution)
    to_output_p50_ms: float
    to_output_p99_ms: float
    job_cpu_share: float
    produced: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def latency(bootstrap: str, topics: Topics, template: Path, rate_per_s: int, window_s: float,
            rules: Path, partitions: int = 2, **extra_env: Any) -> LatencyResult:
    """Offer `rate_per_s` live events for warm-up + `window_s` + tail; latencies of the window."""
    events = []
    with template.open("rb") as f:
        for line in f:
            events.append(orjson.loads(line))
    input_topic = topics.create("live-in", partitions)
    outputs = topics.outputs()
    out_topic = outputs["PROMO_KAFKA_NOTIFICATIONS_TOPIC"]
    env = kafka_env(bootstrap, input_topic, outputs, PROMO_ALLOWED_LATENESS_SECONDS="0",
                    PROMO_RULES=rules, **extra_env)
    arrivals: dict[tuple[str, str], tuple[float, int]] = {}  # -> (perf_counter, CreateTime ms)
    stop = threading.Event()
    first_arrival = threading.Event()

    def consume() -> None:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-lat-{out_topic}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "fetch.wait.max.ms": 5, "fetch.min.bytes": 1})
        consumer.assign([TopicPartition(out_topic, 0, 0)])
        try:
            while not stop.is_set():
                # poll, not consume(n, timeout): that waits for n messages or the whole timeout
                message = consumer.poll(0.05)
                now = time.perf_counter()
                if message is not None and not message.error():
                    value = orjson.loads(message.value())
                    session = value["session"]
                    if session["close_reason"] == "logout":
                        created = message.timestamp()[1]  # set by the job's producer
                        arrivals.setdefault((value["user_id"], session["end"]), (now, created))
                    first_arrival.set()
        finally:
            consumer.close()

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all",
                         "enable.idempotence": True})
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    cluster = Cluster(job_commands(1), {**os.environ, **env}).start()
    produced_at: dict[tuple[str, str], tuple[float, int]] = {}  # -> (perf_counter, wall ms)
    notes: list[str] = []
    began = time.perf_counter()
    window_start = window_end = None
    n = 0
    producing_s = 0.0
    try:
        warmup_deadline = began + 60
        while True:
            now = time.perf_counter()
            if window_start is None and first_arrival.is_set():
                window_start = now + 2.0  # let the start-up backlog drain first
                window_end = window_start + window_s
            if window_end is not None and now > window_end + 2.0:
                break  # a 2 s tail closes the window's last sessions
            if window_start is None and now > warmup_deadline:
                raise RuntimeError("no notification within 60 s of start")
            if cluster.poll():
                raise RuntimeError(f"job exited early: {cluster.results}")
            due = int((now - began) * rate_per_s)
            wall_ms = time.time_ns() // 1_000_000
            while n < due:
                event = events[n % len(events)]
                event["ts"] = wall_ms
                if n >= len(events):  # second pass over the template: fresh ids
                    event["event_id"] = f"{event['event_id']}-{n // len(events)}"
                value = orjson.dumps(event)
                while True:
                    try:
                        producer.produce(input_topic, value, event["user_id"].encode())
                        break
                    except BufferError:
                        producer.poll(0.01)
                if event["type"] == "logout" and window_start is not None and window_start <= now <= window_end:
                    produced_at[(event["user_id"], format_ms(wall_ms))] = (
                        time.perf_counter(), time.time_ns() // 1_000_000)
                n += 1
            producer.poll(0)
            time.sleep(0.001)
        producing_s = time.perf_counter() - began
        producer.flush(30)
        time.sleep(1.0)
    finally:
        stop.set()
        cluster.interrupt()
        try:
            results = cluster.wait(60)
        except TimeoutError:
            results = []
            notes.append("job did not stop on SIGTERM; killed")
        reader.join(10)
    elapsed = time.perf_counter() - began
    matched = [(arrivals[key], t) for key, t in produced_at.items() if key in arrivals]
    latencies = sorted((arrival[0] - produced[0]) * 1000 for arrival, produced in matched)
    in_job = sorted(arrival[1] - produced[1] for arrival, produced in matched)
    cpu = sum(r.cpu_seconds for r in results) / elapsed if results else float("nan")
    return LatencyResult(
        offered_per_s=round(n / producing_s),
        measured_logouts=len(produced_at),
        matched=len(latencies),
        unmatched=len(produced_at) - len(latencies),
        p50_ms=round(_percentile(latencies, 0.50), 1),
        p90_ms=round(_percentile(latencies, 0.90), 1),
        p99_ms=round(_percentile(latencies, 0.99), 1),
        max_ms=round(latencies[-1], 1) if latencies else float("nan"),
        to_output_p50_ms=_percentile(in_job, 0.50),
        to_output_p99_ms=_percentile(in_job, 0.99),
        job_cpu_share=round(cpu, 3),
        produced=n,
        seconds=round(elapsed, 1),
        notes=notes,
    )


def job_rss_when_idle(bootstrap: str, topics: Topics, input_topic: str,
                      settle_s: float = 2.0, timeout: float = 600) -> dict[str, float]:
    """Run the job (no stop at end) until it has read everything and gone idle; its RSS then.

    Idle = its CPU time grew by less than 5 % of `settle_s` over `settle_s`. Sessions stay open
    (no end of input), unlike a file run, where the end of input closes them all.
    """
    env = kafka_env(bootstrap, input_topic, topics.outputs())
    cluster = Cluster(job_commands(1), {**os.environ, **env}).start()
    pid = cluster.procs[0].pid
    try:
        began = time.perf_counter()
        last_cpu = -1.0
        while True:
            time.sleep(settle_s)
            if cluster.poll():
                raise RuntimeError(f"job exited early: {cluster.results}")
            cpu = proc_cpu_seconds(pid)
            if last_cpu >= 0 and cpu - last_cpu < 0.05 * settle_s:
                break
            if time.perf_counter() - began > timeout:
                raise TimeoutError("job did not go idle")
            last_cpu = cpu
        return {"rss_bytes": proc_rss_bytes(pid), "cpu_s": cpu,
                "seconds": round(time.perf_counter() - began, 1)}
    finally:
        cluster.interrupt()
        try:
            cluster.wait(60)
        except TimeoutError:
            pass


def produce_one_per_partition(bootstrap: str, topic: str, line: bytes, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        producer.produce(topic, line, partition=p)
    producer.flush(30)


def throughput_rate(events: int, run: KafkaRun, startup: float, processes: int) -> dict[str, int]:
    return {
        "incl_startup": rate(events, run.seconds * processes),
        "excl_startup": rate(events, max(run.seconds - startup, 1e-9) * processes),
    }
