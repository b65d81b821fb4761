"""The exactly-once sink's pure parts: record ids, output partitions, the replay filter."""

from __future__ import annotations

import zlib
from collections import Counter

from dataflows.kafka_exactly_once import ReplayFilter, by_output_partition, partition_of
from promotion.records import OutRecord, dead_letter_raw, late_record, notification_record, record_id
from promotion.routing import RejectedRecord
from promotion.events import Event
from promotion.shard import LateEvent


def note(nid: str, user: str = "u1") -> OutRecord:
    return notification_record({"notification_id": nid, "user_id": user, "action": "STOP_PROMOTION"})


def test_each_kind_of_record_has_its_id() -> None:
    assert record_id(note("n-1").headers) == b"n-1"
    rejected = RejectedRecord(3, b"{oops", ("not_json", "bad", None))
    assert record_id(dead_letter_raw("cart/2", 41, rejected).headers) == b"cart/2@41"
    event = Event(1_767_225_600_000, "e9", "u7", "login", "auth", None, None, None, None)
    assert record_id(late_record(LateEvent(event, 1_767_225_700_000, "auth/0")).headers) == b"auth/0/e9"


def test_keyed_records_go_where_librdkafka_puts_them_and_stay_grouped() -> None:
    records = [note(f"n{i}", f"user-{i}") for i in range(50)]
    split = by_output_partition("out", 4)(("notifications", records))
    seen = [r for _key, group in split for r in group]
    assert sorted(seen) == sorted(records)
    for key, group in split:
        assert {f"out/{zlib.crc32(r.key) % 4}" for r in group} == {key}
    assert len(split) == 4


def test_a_dead_letter_without_key_goes_by_its_id() -> None:
    rejected = RejectedRecord(0, b"x", ("not_json", "bad", None))
    record = dead_letter_raw("cart/0", 7, rejected)
    assert partition_of(record, 3) == zlib.crc32(b"cart/0@7") % 3


def test_replays_are_dropped_as_often_as_they_were_written() -> None:
    replays = ReplayFilter(Counter({b"a": 2, b"b": 1}))
    first = [note("a"), note("c"), note("a"), note("a"), note("b")]
    assert [record_id(r.headers) for r in replays.fresh(first)] == [b"c", b"a"]
    assert replays.at_snapshot() == {}
    assert replays.fresh([note("b")]) == [note("b")]


def test_ids_not_yet_replayed_are_carried_in_the_snapshot() -> None:
    replays = ReplayFilter(Counter({b"a": 1, b"b": 1}))
    replays.fresh([note("a")])
    assert replays.at_snapshot() == {b"b": 1}


def test_ids_no_replay_matches_are_forgotten_after_quiet_snapshots() -> None:
    replays = ReplayFilter(Counter({b"gone": 1}))
    for _ in range(ReplayFilter.QUIET_SNAPSHOTS - 1):
        assert replays.at_snapshot() == {b"gone": 1}
        replays.fresh([note("other")])
    assert replays.at_snapshot() == {}


def test_records_written_by_something_else_have_no_id() -> None:
    assert record_id([]) is None
    assert record_id([("dlq.source.partition", None), ("dlq.source.offset", b"3")]) is None
    assert record_id([("notification_id", None), ("late.id", b"p/e1")]) == b"p/e1"
    foreign = OutRecord(None, b"x", [])
    assert partition_of(foreign, 2) == zlib.crc32(b"") % 2
    assert ReplayFilter(Counter({b"a": 1})).fresh([foreign]) == [foreign]


def test_carried_ids_merge_with_the_read_back() -> None:
    read_back = Counter({b"a": 1})
    read_back.update({b"a": 1, b"b": 1})  # as _ExactlyOncePartition merges a snapshot's pending
    replays = ReplayFilter(read_back)
    assert replays.fresh([note("a"), note("a"), note("a"), note("b")]) == [note("a")]


def test_start_offsets_of_partitions_recorded_at_once_do_not_collide(tmp_path) -> None:
    """Workers build their sink partitions concurrently; each keeps its own file."""
    from concurrent.futures import ThreadPoolExecutor

    from dataflows.kafka_exactly_once import StartOffsets

    offsets = StartOffsets(tmp_path)
    parts = [f"out/{n}" for n in range(8)]
    for _ in range(20):
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda part: offsets.record(part, int(part[4:]) * 10), parts))
    assert [offsets.recorded(part) for part in parts] == [n * 10 for n in range(8)]
    assert StartOffsets(None).recorded("out/0") is None
