"""Prometheus metrics, registered in prometheus_client's default registry.

Bytewax's API server (`BYTEWAX_DATAFLOW_API_ENABLED=1`, port 3030, `/metrics`) serves this registry
next to Bytewax's own series, so no second HTTP server is started. Labels never carry user or
session ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "promotions_events_consumed", "Valid events decoded, by partition and event type",
    ["type"],
)
RECORDS = Counter(
    "promotions_records_consumed", "Raw input records read, valid or not", ["partition"]
)
REJECTED = Counter("promotions_events_rejected", "Input records rejected, by reason", ["reason"])
LATE = Counter("promotions_events_late", "Events that arrived behind the watermark")
DUPLICATES = Counter(
    "promotions_events_duplicate", "Events ignored as repeats of an event_id in an open session"
)
SESSIONS_CLOSED = Counter(
    "promotions_sessions_closed", "Sessions closed, by close reason", ["close_reason"]
)
NOTIFICATIONS = Counter(
    "promotions_notifications",
    "Notifications emitted, by action, rule and rules version",
    ["action", "rule", "rules_version"],
)
OPEN_USERS = Gauge(
    "promotions_open_users", "Users with at least one open session (summed over shards)"
)
WATERMARK = Gauge(
    "promotions_watermark_seconds",
    "Lowest event-time watermark over this process's shards, as Unix time",
)
SOURCE_ERRORS = Counter(
    "promotions_source_errors", "Transient Kafka consumer errors (not dead-lettered)", ["error"]
)
SINK_FAILURES = Counter(
    "promotions_sink_delivery_failures", "Records Kafka did not acknowledge, by topic", ["topic"]
)
