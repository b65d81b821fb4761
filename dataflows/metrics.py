"""Prometheus metrics, registered in prometheus_client's default registry.

Bytewax's API server (`BYTEWAX_DATAFLOW_API_ENABLED=1`, port 3030, `/metrics`) serves this registry
next to Bytewax's own series, so no second HTTP server is started. All names share the
`promotions_` prefix, use base units, and never carry user or session ids as labels.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence
from itertools import repeat

from prometheus_client import Counter, Gauge, Histogram, Info

EVENTS = Counter(
    "promotions_events_consumed", "Valid events decoded, by source topic and event type",
    ["topic", "type"],
)
RECORDS = Counter(
    "promotions_records_consumed", "Raw input records read, valid or not, by source topic",
    ["topic"],
)
REJECTED = Counter("promotions_events_rejected", "Input records rejected, by reason", ["reason"])
LATE = Counter("promotions_events_late", "Events that arrived behind the watermark")
DUPLICATES = Counter(
    "promotions_events_duplicate", "Events ignored as repeats of an event_id in an open session"
)
SESSIONS_OPENED = Counter("promotions_sessions_opened", "Sessions started (once settled)")
SESSIONS_CLOSED = Counter(
    "promotions_sessions_closed", "Sessions closed, by close reason", ["close_reason"]
)
NOTIFICATIONS = Counter(
    "promotions_notifications",
    "Notifications emitted, by action, rule and rules version",
    ["action", "rule", "rules_version"],
)
OPEN_SESSIONS = Gauge(
    "promotions_open_sessions", "Users with an open session in this process"
)
SESSION_DURATION = Histogram(
    "promotions_session_duration_seconds", "Event-time length of closed sessions",
    buckets=(1, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
SESSION_EVENTS = Histogram(
    "promotions_session_events", "Events per closed session",
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233),
)
NOTIFICATION_LATENCY = Histogram(
    "promotions_event_to_notification_seconds",
    "Wall clock at emission minus the event time of the session's last event, by close reason",
    ["close_reason"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600),
)
INPUT_LAG = Gauge(
    "promotions_input_lag_records", "Records between the partition's end and the next offset read",
    ["topic", "partition"],
)
SOURCE_ERRORS = Counter(
    "promotions_source_errors", "Transient Kafka consumer errors (not dead-lettered)", ["error"]
)
SINK_FAILURES = Counter(
    "promotions_sink_delivery_failures", "Records Kafka did not acknowledge, by topic", ["topic"]
)
REPLAYS_DROPPED = Counter(
    "promotions_output_replays_dropped",
    "Records not written again after a resume: an earlier run wrote them after the snapshot",
    ["topic"],
)
READBACK_SECONDS = Gauge(
    "promotions_output_readback_seconds",
    "Time the last resume of an output partition spent reading back what was written after the snapshot",
    ["topic"],
)
RULES = Info("promotions_rules", "The active rules version")

_watermarks: dict[str, int] = {}
_watermarks_lock = threading.Lock()


def record_watermark(shard: str, watermark_ms: int) -> None:
    """Remember a shard's watermark; the lag gauge reports the slowest shard of this process."""
    with _watermarks_lock:
        _watermarks[shard] = watermark_ms


def _watermark_lag() -> float:
    with _watermarks_lock:
        if not _watermarks:
            return 0.0
        slowest = min(_watermarks.values())
    return max(0.0, time.time() - slowest / 1000) if slowest > 0 else 0.0


WATERMARK_LAG = Gauge(
    "promotions_watermark_lag_seconds",
    "Wall clock minus the lowest event-time watermark of this process's shards",
)
WATERMARK_LAG.set_function(_watermark_lag)


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """What `observe` does for each amount, with one increment per bucket touched.

    `observe` walks the bucket bounds and increments two values per call; a batch of closed
    sessions observes thousands of amounts. Relies on prometheus_client's (pinned) storage:
    one non-cumulative value per upper bound, and a sum.
    """
    if not amounts:
        return
    bounds = histogram._upper_bounds  # noqa: SLF001
    for index, count in Tally(map(bisect_left, repeat(bounds), amounts)).items():
        histogram._buckets[index].inc(count)  # noqa: SLF001
    histogram._sum.inc(sum(amounts))  # noqa: SLF001


def topic_of(partition: str) -> str:
    """`topic/3` -> `topic`; file partitions keep their name."""
    topic, _, number = partition.rpartition("/")
    return topic if topic and number.isdigit() else partition
RULES_UPDATES = Counter(
    "promotions_rules_updates", "Rules file changes seen, by result (applied or rejected)",
    ["result"],
)
