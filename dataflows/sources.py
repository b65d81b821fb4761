"""Input sources. Each yields one `RawBatch` per poll: a list of raw records of one partition.

Moving a whole batch as one item keeps Bytewax's per-item overhead off the per-event path.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition


class RawBatch(NamedTuple):
    """Raw records of one input partition, in partition order.

    `offsets[i]` locates record i in its partition (a line number for files, a Kafka offset).
    """

    partition: str
    offsets: list[int]
    values: list[bytes]
    final: bool = False  # the partition has ended: it no longer holds the watermark back


def input_files(path: Path) -> list[Path]:
    """The partitions of `PROMO_INPUT`: the file itself, or a directory's `*.jsonl` files in name
    order. Hidden files (`.x.jsonl`, editors' and copiers' temporaries) are not partitions; an
    entry named `*.jsonl` that is not a regular file is a configuration error (ValueError)."""
    if not path.is_dir():
        return [path]
    files = []
    for entry in sorted(path.glob("*.jsonl")):
        if entry.name.startswith("."):
            continue
        if not entry.is_file():
            raise ValueError(f"{entry} is not a regular file (a directory?): only *.jsonl files "
                             f"may match in an input directory")
        files.append(entry)
    if not files:
        raise ValueError(f"no *.jsonl files in directory {path}")
    return files


class _JsonLinesPartition(StatefulSourcePartition[RawBatch, tuple[int, int]]):
    def __init__(self, name: str, path: Path, batch_size: int, resume: tuple[int, int] | None):
        self._name = name
        self._file = path.open("rb")
        self._batch_size = batch_size
        self._read_hint = batch_size * 200  # bytes: about `batch_size` typical records
        position, self._line = resume if resume is not None else (0, 0)
        self._file.seek(position)
        self._position = position
        self._ended = False

    def next_batch(self) -> list[RawBatch]:
        if self._ended:
            raise StopIteration()
        lines = self._file.readlines(self._read_hint)  # whole lines, about this many bytes
        first = self._line + 1
        # Every line is a record, a blank one too: it is rejected (not_json), never skipped.
        values = [line.rstrip(b"\r\n") for line in lines]
        offsets = list(range(first, first + len(values)))
        self._line += len(lines)
        self._position = self._file.tell()
        if not lines:  # end of file: this (empty) batch is the partition's last
            self._ended = True
        return [RawBatch(self._name, offsets, values, final=self._ended)]

    def snapshot(self) -> tuple[int, int]:
        return (self._position, self._line)

    def close(self) -> None:
        self._file.close()


class JsonLinesSource(FixedPartitionedSource[RawBatch, tuple[int, int]]):
    """JSON-lines input: a file is one partition; a directory gives one partition per `*.jsonl`
    file in it (so several workers or processes can read and decode in parallel). Each partition
    resumes at the byte after its last batch."""

    def __init__(self, path: Path, batch_size: int = 10_000) -> None:
        self._path = Path(path)
        self._batch_size = batch_size
        self._files = {f"file:{f.name}": f for f in input_files(self._path)}

    @property
    def partition(self) -> str:
        return next(iter(self._files))

    def list_parts(self) -> list[str]:
        return list(self._files)

    def build_part(
        self, step_id: str, for_part: str, resume_state: tuple[int, int] | None
    ) -> _JsonLinesPartition:
        return _JsonLinesPartition(for_part, self._files[for_part], self._batch_size, resume_state)
