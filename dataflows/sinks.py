"""Output sinks for JSON lines: each record's value is one line; keys and headers are dropped."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from bytewax.outputs import (
    DynamicSink,
    FixedPartitionedSink,
    StatefulSinkPartition,
    StatelessSinkPartition,
)

from promotion.records import OutRecord

_STREAM_LOCK = threading.Lock()
#: Output targets that are standard streams rather than files.
STREAMS = ("-", "stdout", "stderr")

Records = tuple[str, list[OutRecord]]  # (routing key, records of one upstream batch)


def _chunk(batches: list[list[OutRecord]]) -> bytes:
    return b"".join(record.value + b"\n" for records in batches for record in records)


class _StreamPartition(StatelessSinkPartition[Records]):
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write_batch(self, items: list[Records]) -> None:
        chunk = _chunk([records for _key, records in items])
        if chunk:
            with _STREAM_LOCK:  # workers are threads: keep each chunk whole
                self._stream.write(chunk)
                self._stream.flush()


class StreamSink(DynamicSink[Records]):
    """stdout or stderr, written by every worker."""

    def __init__(self, name: str) -> None:
        self._name = name

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StreamPartition:
        stream = sys.stderr.buffer if self._name == "stderr" else sys.stdout.buffer
        return _StreamPartition(stream)


class _FilePartition(StatefulSinkPartition[list[OutRecord], int]):
    def __init__(self, path: Path, resume: int | None) -> None:
        self._file = path.open("r+b" if resume is not None and path.exists() else "wb")
        self._durable = path.is_file()  # fsync a regular file; /dev/null and pipes refuse it
        if resume is not None and path.is_file():
            self._file.truncate(resume)  # drop what was written after the snapshot
            self._file.seek(resume)

    def write_batch(self, items: list[list[OutRecord]]) -> None:
        chunk = _chunk(items)
        if chunk:
            self._file.write(chunk)
            self._file.flush()

    def snapshot(self) -> int:
        """The position resumed from: everything before it is on disk (fsync), so a resume never
        truncates to beyond the file's end. Lines after it are written again on resume."""
        if self._durable:
            os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class JsonLinesFileSink(FixedPartitionedSink[list[OutRecord], int]):
    """One file, one writer; with recovery, output after the last snapshot is truncated on resume."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    def list_parts(self) -> list[str]:
        return [self._path.name]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FilePartition:
        return _FilePartition(self._path, resume_state)


def prepare_file(target: str, fresh: bool) -> None:
    """Make a file output exist at start: emptied for a fresh run, kept when resuming.

    Bytewax opens a sink partition only when its first record arrives, so a run that writes
    nothing would otherwise leave a previous run's file (or none at all) behind.
    """
    if target in STREAMS or not Path(target).parent.is_dir():
        return
    path = Path(target)
    if fresh and (path.is_file() or not path.exists()):
        path.open("wb").close()
    elif not path.exists():
        path.touch()


def sink_for(target: str) -> StreamSink | JsonLinesFileSink:
    """`-`/`stdout`, `stderr`, or a file path."""
    if target in ("-", "stdout"):
        return StreamSink("stdout")
    if target == "stderr":
        return StreamSink("stderr")
    return JsonLinesFileSink(Path(target))
