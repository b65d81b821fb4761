"""The whole job as plain function calls: decode, shard, sessionize, decide.

The Bytewax dataflow runs exactly these pieces in its operators; `run_offline` runs them in one loop,
which makes it the oracle for end-to-end tests and the engine of what-if replays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from promotion.decoding import DEFAULT_MAX_EVENT_BYTES
from promotion.facts import SessionFacts
from promotion.notifications import build_notification
from promotion.routing import DEFAULT_SHARDS, RejectedRecord, decode_batch, shard_keys
from promotion.rules import CompiledRules
from promotion.shard import LateEvent, SessionConfig, SessionShard


def notifications_for(closed: Iterable[SessionFacts], rules: CompiledRules) -> list[dict]:
    """Apply the rules to closed sessions; sessions the rules leave alone produce nothing."""
    out = []
    for facts in closed:
        decision = rules.decide(facts)
        if decision is not None:
            out.append(build_notification(facts, decision, rules.version))
    return out


@dataclass
class OfflineResult:
    notifications: list[dict] = field(default_factory=list)
    closed: list[SessionFacts] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    duplicates: int = 0


def batched(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    it = iter(lines)
    while batch := list(islice(it, size)):
        yield batch


def run_offline(
    lines: Iterable[bytes],
    config: SessionConfig,
    rules: CompiledRules,
    *,
    shards: int = DEFAULT_SHARDS,
    batch_size: int = 10_000,
    partition: str = "input",
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    shard_factory: Callable[[str, SessionConfig, list[str]], SessionShard] | None = None,
) -> OfflineResult:
    """Run the job over one bounded input partition, with event time only (no idleness).

    `shard_factory(key, config, partitions)` builds each shard (a `SessionShard` that may observe
    what it closes, as `promotions explain` does); by default a plain `SessionShard`."""
    keys = shard_keys(shards)
    if shard_factory is None:
        state = {key: SessionShard(config, [partition], now_ms=0) for key in keys}
    else:
        state = {key: shard_factory(key, config, [partition]) for key in keys}
    result = OfflineResult()
    for batch in batched(lines, batch_size):
        decoded = decode_batch(partition, batch, keys, max_event_bytes)
        result.rejected.extend(decoded.rejected)
        for key, work in decoded.shards:
            step = state[key].on_batch(work, now_ms=0)
            result.closed.extend(step.closed)
            result.late.extend(step.late)
    for key in keys:
        result.closed.extend(state[key].on_eof())
        result.duplicates += state[key].take_counts()[1]
    result.notifications = notifications_for(result.closed, rules)
    return result
