"""The composition root: the one place that builds the dataflow from settings."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from dataflows import kernel_engine, metrics
from dataflows.session_step import Clock, ShardLogic, ShardOutput
from dataflows.rules_watch import RulesWatcher
from dataflows.kafka_exactly_once import ExactlyOnceKafkaOutput, by_output_partition
from dataflows.recovery_check import bytewax_run_arguments, run_recovery_directory
from dataflows.kafka_io import KafkaInput, KafkaOutput, KafkaUnavailable, list_partitions
from dataflows.settings import Settings, SettingsError, load_rules_or_exit
from dataflows.sinks import prepare_file, sink_for
from dataflows.sources import JsonLinesSource, RawBatch
from promotion.decoding import FUTURE_TIMESTAMP, FutureLimit
from promotion.records import OutRecord, dead_letter_line, dead_letter_raw
from promotion.routing import DecodedBatch, decode_batch, shard_keys
from promotion.rules import CompiledRules
from promotion.core import ShardCore


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Wiring:
    """What the flow reads from and writes to; tests swap these for testing sources and sinks."""

    source: Source[RawBatch]
    partitions: Sequence[str]  # every input partition, so no shard's watermark runs ahead
    notifications: Sink[Any]
    rejects: Sink[Any]
    late: Sink[Any]
    raw_dead_letters: bool = False  # original bytes + headers (topics) or JSON lines (files)
    #: Per output: a flat_map step that keys each item by the sink partition it must go to
    #: (exactly-once Kafka output writes each Kafka partition from one sink partition).
    keyed_outputs: dict[str, Callable[[Any], list[Any]]] = field(default_factory=dict)
    #: Whether the run keeps a recovery store. Bytewax asks every touched shard for a snapshot at
    #: each epoch's end even without one; when nothing keeps them, shards skip pickling state.
    recovery: bool = True


def _bytewax_run_recovery() -> bool | None:
    """Whether `python -m bytewax.run` was given a recovery store, as it parsed its own flags and
    environment (any spelling argparse accepts: `-r DIR`, `-rDIR`, `--recovery-dir=DIR`, ...).
    None when the flow is not being built by `bytewax.run`."""
    parsed = bytewax_run_arguments()
    return None if parsed is None else parsed["recovery_config"] is not None


def recovery_directory() -> Path | None:
    """The recovery store's directory as `bytewax.run` was given it (or its environment variable)."""
    if bytewax_run_arguments() is not None:
        return run_recovery_directory()
    found = os.environ.get("BYTEWAX_RECOVERY_DIRECTORY")
    return Path(found) if found else None


def recovery_enabled() -> bool:
    """Whether this run resumes from a recovery store (then outputs are kept, not emptied)."""
    known = _bytewax_run_recovery()
    if known is not None:
        return known
    return bool(os.environ.get("BYTEWAX_RECOVERY_DIRECTORY")) or any(
        arg.startswith(("-r", "--recovery")) for arg in sys.argv[1:]
    )


def snapshots_kept() -> bool:
    """Whether shard snapshots may be kept. Only `python -m bytewax.run` tells for sure; under any
    other runner (`run_main`, `cluster_main`) a recovery store may have been given, so snapshots
    are taken."""
    known = _bytewax_run_recovery()
    return True if known is None else known


def default_wiring(settings: Settings) -> Wiring:
    if settings.mode == "kafka":
        return kafka_wiring(settings)
    source = JsonLinesSource(settings.input, settings.batch_size)
    fresh = not recovery_enabled()
    for name in ("output", "rejects_output", "late_output"):
        target = getattr(settings, name)
        try:  # here, not in the run: Bytewax would report it as a step failure with a traceback
            prepare_file(target, fresh)
        except OSError as error:
            raise SettingsError(f"PROMO_{name.upper()}: cannot write {target!r}: {error.strerror}") from None
    return Wiring(
        source=source,
        partitions=source.list_parts(),
        notifications=sink_for(settings.output),
        rejects=sink_for(settings.rejects_output),
        late=sink_for(settings.late_output),
        raw_dead_letters=False,
        recovery=snapshots_kept(),
    )


def kafka_wiring(settings: Settings) -> Wiring:
    """Input topics merged into one stream; notifications, dead letters and late events to topics."""
    outputs = {"notifications": settings.kafka_notifications_topic,
               "rejects": settings.kafka_dlq_topic, "late": settings.kafka_late_topic}
    if settings.kafka_exactly_once and len(set(outputs.values())) < len(outputs):
        raise SettingsError("PROMO_KAFKA_NOTIFICATIONS_TOPIC, PROMO_KAFKA_DLQ_TOPIC and "
                            "PROMO_KAFKA_LATE_TOPIC must be three different topics (each output "
                            "partition has one writer)")
    try:
        partitions = list_partitions(settings.kafka_common(), settings.input_topics)
        out_partitions = Counter(name.rpartition("/")[0] for name in
                                 list_partitions(settings.kafka_common(), list(outputs.values())))
    except KafkaUnavailable as error:
        raise SettingsError(f"{error} (create the topics first: `promotions topics create`)") from None
    producer = settings.kafka_producer()
    sinks: dict[str, Sink[Any]]
    keyed: dict[str, Callable[[Any], list[Any]]] = {}
    if settings.kafka_exactly_once:
        store = recovery_directory()
        sinks = {name: ExactlyOnceKafkaOutput(topic, out_partitions[topic], producer,
                                              settings.kafka_consumer(), store)
                 for name, topic in outputs.items()}
        keyed = {name: by_output_partition(topic, out_partitions[topic])
                 for name, topic in outputs.items()}
    else:
        sinks = {name: KafkaOutput(topic, producer) for name, topic in outputs.items()}
    return Wiring(
        source=KafkaInput(settings.kafka_consumer(), partitions,
                          start_at_end=settings.kafka_start == "latest",
                          batch_size=settings.batch_size, stop_at_end=settings.kafka_stop_at_end),
        partitions=partitions,
        notifications=sinks["notifications"],
        rejects=sinks["rejects"],
        late=sinks["late"],
        raw_dead_letters=True,
        recovery=snapshots_kept(),
        keyed_outputs=keyed,
    )


def build_flow(
    settings: Settings,
    wiring: Wiring | None = None,
    rules: CompiledRules | None = None,
    clock: Clock = wall_clock_ms,
) -> Dataflow:
    """input -> decode -> route by shard -> sessions -> notifications / rejects / late outputs.

    Step ids are part of the recovery store's keys: renaming one breaks resume.
    """
    wiring = wiring or default_wiring(settings)
    rules = rules or load_rules_or_exit(settings.rules)
    keys = shard_keys(settings.shards)
    config = settings.session_config()
    tick_ms = round(settings.tick_seconds * 1000)
    max_bytes = settings.max_event_bytes
    partitions = list(wiring.partitions)
    watched = settings.rules if settings.rules_watch else None
    watcher = RulesWatcher(watched, round(settings.rules_poll_seconds * 1000), rules)
    if settings.engine == "kernel":
        if not kernel_engine.available():
            raise SettingsError(kernel_engine.MISSING)
        split, core = kernel_engine.decode_batch, kernel_engine.KernelCore
    else:
        split, core = decode_batch, ShardCore

    max_future_ms = settings.max_future_ms
    if max_future_ms:  # the series exists at 0 from the start, so the first reject is an increase
        metrics.REJECTED.labels(FUTURE_TIMESTAMP)

    def decode(batch: RawBatch) -> DecodedBatch:
        # The wall clock at arrival, read here (never in promotion/), bounds how far ahead a ts may be.
        future = FutureLimit(clock(), max_future_ms) if max_future_ms else None
        decoded = split(batch.partition, batch.values, keys, max_bytes, batch.final, future)
        topic = metrics.topic_of(batch.partition)
        metrics.RECORDS.labels(topic).inc(len(batch.values))
        for kind, count in decoded.type_counts.items():
            metrics.EVENTS.labels(topic, kind).inc(count)
        for record in decoded.rejected:
            metrics.REJECTED.labels(record.rejection.reason).inc()
        return decoded

    dead_letter = dead_letter_raw if wiring.raw_dead_letters else dead_letter_line

    def rejected_records(pair: tuple[RawBatch, DecodedBatch]) -> tuple[str, list[OutRecord]] | None:
        batch, decoded = pair
        if not decoded.rejected:
            return None
        return (
            "rejects",
            [dead_letter(batch.partition, batch.offsets[r.index], r) for r in decoded.rejected],
        )

    def build_shard(resume: bytes | None) -> ShardLogic:
        return ShardLogic(config, partitions, watcher, clock, tick_ms, resume, wiring.recovery,
                          core)

    def lines(field: str):
        def pick(item: tuple[str, ShardOutput]) -> tuple[str, list[OutRecord]] | None:
            chosen = getattr(item[1], field)
            return (field, chosen) if chosen else None

        return pick

    flow = Dataflow("session_promotions")
    raw = op.input("input", flow, wiring.source)
    paired = op.map("decode", raw, lambda batch: (batch, decode(batch)))
    routed = op.flat_map("route", paired, lambda pair: pair[1].shards)
    results = op.stateful_batch("sessions", routed, build_shard)
    outputs = {
        "notifications": op.filter_map("notifications", results, lines("notifications")),
        "late": op.filter_map("late", results, lines("late")),
        "rejects": op.filter_map("rejects", paired, rejected_records),
    }
    for name, stream in outputs.items():
        keyed = wiring.keyed_outputs.get(name)
        if keyed is not None:
            stream = op.flat_map(f"{name}_by_partition", stream, keyed)
        op.output(f"{name}_out", stream, getattr(wiring, name))
    return flow
