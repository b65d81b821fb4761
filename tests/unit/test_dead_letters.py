"""Dead letters: an oversized record keeps its first KiB, its size and digest; others stay whole."""

from __future__ import annotations

import base64
import hashlib

import orjson

from promotion.decoding import Rejection
from promotion.records import KEPT_BYTES, dead_letter_line, dead_letter_raw
from promotion.routing import RejectedRecord, decode_batch, shard_keys


def _oversized(raw: bytes) -> RejectedRecord:
    [record] = decode_batch("file:x.jsonl", [raw], shard_keys(4), 65_536, True).rejected
    assert record.rejection.reason == "oversized"
    return record


def test_an_oversized_line_is_cut_to_its_first_kib_in_the_json_line_form() -> None:
    raw = b'{"event_id":"e1","note":"' + b"x" * 5_000_000 + b'"}'
    line = dead_letter_line("file:x.jsonl", 7, _oversized(raw))
    assert len(line.value) < 2 * KEPT_BYTES
    out = orjson.loads(line.value)
    assert out["raw"].encode() == raw[:KEPT_BYTES]
    assert out["size"] == len(raw) and out["truncated"] is True
    assert out["blake2b"] == hashlib.blake2b(raw, digest_size=16).hexdigest()
    assert (out["reason"], out["offset"]) == ("oversized", 7)


def test_an_oversized_record_is_cut_in_the_kafka_form_and_keeps_its_other_headers() -> None:
    raw = b"\xff" * 100_000  # not UTF-8 either
    record = dead_letter_raw("cart-events/3", 42, _oversized(raw))
    assert record.value == raw[:KEPT_BYTES]
    headers = dict(record.headers)
    assert headers["dlq.size"] == b"100000"
    assert headers["dlq.blake2b"] == hashlib.blake2b(raw, digest_size=16).hexdigest().encode()
    assert headers["dlq.reason"] == b"oversized"
    assert (headers["dlq.source.topic"], headers["dlq.source.offset"]) == (b"cart-events", b"42")
    line = orjson.loads(dead_letter_line("cart-events/3", 42, _oversized(raw)).value)
    assert base64.b64decode(line["raw_base64"]) == raw[:KEPT_BYTES]


def test_the_cut_does_not_split_a_utf8_character() -> None:
    raw = ("é" * 100_000).encode()  # two bytes each: byte KEPT_BYTES-1 would start one
    out = orjson.loads(dead_letter_line("p", 0, _oversized(b"a" + raw)).value)
    assert out["raw"] == "a" + "é" * ((KEPT_BYTES - 1) // 2)


def test_other_rejects_are_kept_whole() -> None:
    raw = b"not json " * 500  # 4.5 KB, under the size limit
    record = RejectedRecord(0, raw, Rejection("invalid_json", "x", None))
    assert orjson.loads(dead_letter_line("p", 0, record).value)["raw"].encode() == raw
    assert "size" not in orjson.loads(dead_letter_line("p", 0, record).value)
    kafka = dead_letter_raw("p", 0, record)
    assert kafka.value == raw and "dlq.size" not in dict(kafka.headers)
