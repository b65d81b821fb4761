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


@pytest.mark.parametrize("batch_size", [1, 3])
def test_lines_longer_than_a_read_stay_whole(tmp_path: Path, batch_size: int) -> None:
    long = b'{"pad":"' + b"x" * 5_000 + b'"}'  # far beyond a read of ~200 bytes per record
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"a\r\n" + long + b"\r\n" + b"b\n" + long + b"\nc\r\r\n")
    offsets, values, _ = _read_all(path, batch_size)
    assert values == [b"a", long, b"b", long, b"c"]
    assert offsets == [1, 2, 3, 4, 5]


def test_resume_continues_after_the_last_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(1, 301)))
    source = JsonLinesSource(path, 1)
    part = source.build_part("input", source.partition, None)
    first = part.next_batch()[0]
    resume = part.snapshot()
    part.close()
    part = source.build_part("input", source.partition, resume)
    rest: list[bytes] = []
    offsets: list[int] = []
    try:
        while True:
            for batch in part.next_batch():
                rest += batch.values
                offsets += batch.offsets
    except StopIteration:
        pass
    finally:
        part.close()
    assert first.values + rest == [b"%d" % i for i in range(1, 301)]
    assert offsets == list(range(len(first.values) + 1, 301))


def test_hidden_files_in_an_input_directory_are_not_partitions(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    (tmp_path / ".a.jsonl").write_bytes(b"{}\n")  # e.g. an editor's or rsync's temporary
    (tmp_path / "notes.txt").write_bytes(b"x\n")
    assert JsonLinesSource(tmp_path).list_parts() == ["file:a.jsonl"]


def test_a_subdirectory_named_jsonl_is_one_configuration_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from dataflows.settings import SettingsError, load_settings

    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    (tmp_path / "x.jsonl").mkdir()
    with pytest.raises(SettingsError) as error:
        load_settings(input=tmp_path)
    assert "PROMO_INPUT:" in str(error.value.code) and "x.jsonl is not a regular file" in str(
        error.value.code)
    env = {**os.environ, "PROMO_INPUT": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], env=env,
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr
    assert "PROMO_INPUT" in run.stderr and "x.jsonl" in run.stderr


def test_a_directory_of_only_hidden_files_is_refused(tmp_path: Path) -> None:
    from dataflows.settings import SettingsError, load_settings

    (tmp_path / ".a.jsonl").write_bytes(b"{}\n")
    with pytest.raises(SettingsError, match="no \\*.jsonl files"):
        load_settings(input=tmp_path)
