"""Batch observation of histograms equals one `observe` per amount."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from dataflows.metrics import observe_many, topic_of

BUCKETS = (1, 2.5, 10, 60, 300)


def samples(registry: CollectorRegistry) -> list[tuple]:
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for metric in registry.collect() for s in metric.samples
                  if not s.name.endswith("_created"))


@given(st.lists(st.floats(min_value=0, max_value=1_000, allow_nan=False), max_size=50))
def test_observe_many_equals_observe(amounts: list[float]) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("h", "h", buckets=BUCKETS, registry=one)
    batched = Histogram("h", "h", buckets=BUCKETS, registry=many)
    for amount in amounts:
        single.observe(amount)
    observe_many(batched, amounts)
    assert samples(one) == samples(many)


def test_topic_of() -> None:
    assert topic_of("cart-events/3") == "cart-events"
    assert topic_of("file:events.jsonl") == "file:events.jsonl"
