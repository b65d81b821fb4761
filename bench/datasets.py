"""Input files of the benchmark, all from the seeded generator (or derived from its output)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from promotion.generator import GeneratorConfig, write_jsonl

#: 2019-01-01T00:00:00Z: a backlog years behind the wall clock.
BACKLOG_START_MS = 1_546_300_800_000


@dataclass(frozen=True)
class Dataset:
    path: Path
    users: int
    events: int  # valid events (lines may be a little more: duplicates)
    lines: int
    first_ts: int
    last_ts: int


def _span(path: Path) -> tuple[int, int]:
    first = last = None
    with path.open("rb") as f:
        for line in f:
            ts = orjson.loads(line)["ts"]
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
    return int(first or 0), int(last or 0)


def traffic(directory: Path, users: int, events: int, start_ms: int = BACKLOG_START_MS,
            name: str | None = None, duplicate_rate: float = 0.01) -> Dataset:
    """Realistic traffic (epoch-ms timestamps, 2 s disorder, 1 % duplicates), a backlog by default."""
    config = GeneratorConfig(seed=1, users=users, events=events, start_ms=start_ms, rate_per_s=2_000,
                             max_disorder_ms=2_000, duplicate_rate=duplicate_rate, ts_format="epoch_ms")
    path = directory / (name or f"traffic-{users}u-{events}e.jsonl")
    lines = write_jsonl(path, config)
    first, last = _span(path)
    return Dataset(path, users, events, lines, first, last)


def shifted_to_now(directory: Path, backlog: Dataset, lead_ms: int = 1_000) -> tuple[Dataset, int]:
    """The same traffic moved in event time so that it ends `lead_ms` before now ("live-like").

    The generator is shift-invariant: the same seed with another start gives the same lines with
    every ts moved by the same amount. Returns the dataset and the shift in ms.
    """
    shift = (time.time_ns() // 1_000_000 - lead_ms) - backlog.last_ts
    config = GeneratorConfig(seed=1, users=backlog.users, events=backlog.events,
                             start_ms=BACKLOG_START_MS + shift, rate_per_s=2_000,
                             max_disorder_ms=2_000, duplicate_rate=0.01, ts_format="epoch_ms")
    path = directory / f"live-{backlog.users}u-{backlog.events}e.jsonl"
    lines = write_jsonl(path, config)
    first, last = _span(path)
    if last - backlog.last_ts != shift or lines != backlog.lines:
        raise AssertionError("generator is not shift-invariant: backlog/live comparison is void")
    return Dataset(path, backlog.users, backlog.events, lines, first, last), shift


def one_event_per_user(directory: Path, users: int, span_ms: int = 240_000) -> Dataset:
    """`users` users with one event each, in ts order within `span_ms` (< the 5 min gap): at the
    end every session is still open. Types and fields in the generator's first-event mix."""
    path = directory / f"open-{users}u.jsonl"
    start = BACKLOG_START_MS
    kinds = (
        ("login", "auth", False),
        ("product_view", "catalog", True),
        ("product_view", "catalog", True),
        ("add_to_cart", "cart", True),
    )
    with path.open("wb") as f:
        chunk = []
        for i in range(users):
            kind, source, product = kinds[i % len(kinds)]
            event: dict[str, object] = {"event_id": f"e{i:010d}", "user_id": f"u{i:07d}",
                                        "type": kind, "ts": start + i * span_ms // users,
                                        "source": source}
            if product:
                event.update(product_id=f"p{i % 500:05d}", category="books", price=12.5)
            chunk.append(orjson.dumps(event))
            if len(chunk) >= 10_000:
                f.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            f.write(b"\n".join(chunk) + b"\n")
    return Dataset(path, users, users, users, start, start + (users - 1) * span_ms // users)


def one_line(directory: Path, source: Dataset) -> Dataset:
    """The first line of a dataset: a run of the job on it is its start-up (and shut-down) cost."""
    path = directory / "one-line.jsonl"
    with source.path.open("rb") as f:
        path.write_bytes(f.readline())
    return replace(source, path=path, events=1, lines=1)


def head(directory: Path, source: Dataset, lines: int) -> Dataset:
    """The first `lines` lines of a dataset."""
    path = directory / f"{source.path.stem}-head{lines}.jsonl"
    with source.path.open("rb") as f, path.open("wb") as out:
        for _, line in zip(range(lines), f):
            out.write(line)
    return replace(source, path=path, events=lines, lines=lines)


def split(directory: Path, source: Dataset, parts: int) -> list[Path]:
    """Round-robin by user (a user's events stay in one part, in order), like keyed partitions."""
    paths = [directory / f"{source.path.stem}-part{i}.jsonl" for i in range(parts)]
    outs = [p.open("wb") for p in paths]
    try:
        with source.path.open("rb") as f:
            for line in f:
                user = orjson.loads(line)["user_id"]
                outs[hash_user(user) % parts].write(line)
    finally:
        for out in outs:
            out.close()
    return paths


def hash_user(user: str) -> int:
    import zlib

    return zlib.crc32(user.encode("utf-8"))
