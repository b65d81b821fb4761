"""The JSON-lines source: whole lines in order, line numbers as offsets, blank lines kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataflows.sources import JsonLinesSource


def _read_all(path: Path, batch_size: int) -> tuple[list[int], list[bytes], int]:
    source = JsonLinesSource(path, batch_size)
    part = source.build_part("input", source.partition, None)
    offsets: list[int] = []
    values: list[bytes] = []
    batches = 0
    try:
        while True:
            for batch in part.next_batch():
                offsets += batch.offsets
                values += batch.values
                batches += 1
    except StopIteration:
        pass
    finally:
        part.close()
    return offsets, values, batches


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_every_line_is_a_record_and_offsets_are_line_numbers(tmp_path: Path,
                                                             batch_size: int) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a":1}\n\n   \r\n{"b":2}\r\n\t\n{"c":3}')  # no newline at the end
    offsets, values, _ = _read_all(path, batch_size)
    assert values == [b'{"a":1}', b"", b"   ", b'{"b":2}', b"\t", b'{"c":3}']
    assert offsets == [1, 2, 3, 4, 5, 6]


def test_lines_without_blanks_keep_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(1, 501)))
    offsets, values, batches = _read_all(path, 1)  # ~200 bytes per read: many batches
    assert offsets == list(range(1, 501))
    assert values == [b"%d" % i for i in range(1, 501)]
    assert batches > 2
