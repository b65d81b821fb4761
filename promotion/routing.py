"""From a batch of raw records of one input partition to per-shard work.

Decoding happens where the partition is read; then every shard gets its users' events plus the
batch's event-time progress (even when it has no events of that batch), so each shard's watermark
follows every partition.
"""

from __future__ import annotations

import zlib
from collections import Counter
from operator import itemgetter
from collections.abc import Sequence
from typing import Final, NamedTuple

from promotion.decoding import DEFAULT_MAX_EVENT_BYTES, FutureLimit, Rejection, decode_many
from promotion.watermark import NO_TIME

DEFAULT_SHARDS: Final = 64
_type_of: Final = itemgetter(3)  # Event.type


class ShardBatch(NamedTuple):
    """One shard's share of one partition batch."""

    partition: str
    events: list[tuple]  # plain event tuples, in partition order
    highs_before: list[int]  # per event: highest ts among the batch's earlier records
    batch_high: int  # highest ts in the whole batch (NO_TIME if none)
    final: bool = False  # last batch of its partition


class RejectedRecord(NamedTuple):
    index: int  # position of the record in its batch
    raw: bytes
    rejection: Rejection


class DecodedBatch(NamedTuple):
    shards: list[tuple[str, ShardBatch]]  # (shard key, work) for every shard
    rejected: list[RejectedRecord]
    valid: int
    type_counts: dict[str, int]


def shard_keys(shards: int) -> list[str]:
    """Bytewax state keys of the shards; fixed for the life of a recovery store."""
    width = len(str(max(shards - 1, 0)))
    return [f"shard-{i:0{width}d}" for i in range(shards)]


def decode_batch(
    partition: str,
    values: Sequence[bytes],
    keys: Sequence[str],
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    final: bool = False,
    future: FutureLimit | None = None,
) -> DecodedBatch:
    """Decode a partition batch and split it by shard, keeping partition order.

    Events are built directly as plain tuples in `Event` field order (what sessions hold).
    Rejected records, those beyond `future` too, never count for event-time progress.
    """
    n_shards = len(keys)
    per_shard: list[list[tuple]] = [[] for _ in range(n_shards)]
    highs: list[list[int]] = [[] for _ in range(n_shards)]
    events, rejections = decode_many(values, max_event_bytes, future)
    high = NO_TIME
    crc32 = zlib.crc32
    for event in events:
        shard = crc32(event[2].encode()) % n_shards  # crc32: stable across processes and runs, unlike `hash`
        per_shard[shard].append(event)
        highs[shard].append(high)
        ts = event[0]
        if ts > high:
            high = ts
    work = [
        (key, ShardBatch(partition, per_shard[i], highs[i], high, final))
        for i, key in enumerate(keys)
    ]
    rejected = [RejectedRecord(index, values[index], why) for index, why in rejections]
    type_counts = dict(Counter(map(_type_of, events)))
    return DecodedBatch(work, rejected, len(events), type_counts)
