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


def one_event_per_user(directory: Path, users: int, span_ms: int = 240_000,
                       name: str | None = None) -> Dataset:
    """`users` users with one event each, in ts order within `span_ms`. With the default span
    (< the 5 min gap) every session is still open at the end; with a span many times the gap,
    sessions close along the way and only profiles are left. Types and fields in the generator's
    first-event mix."""
    path = directory / (name or f"open-{users}u.jsonl")
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


def realistic_open(directory: Path, source: Dataset, open_sessions: int,
                   gap_ms: int = 300_000) -> Dataset:
    """Open sessions of the benchmark's traffic: every user's first session of `source`, cut
    before anything could close it (its logout and what follows it, or the first gap longer than
    `gap_ms`), in as many copies as it takes to reach `open_sessions`, with distinct user and
    event ids ("-k" appended to both).

    The copies are interleaved line by line, so arrival order and the disorder bound are the
    source's. Driven with a gap longer than the whole input (`bench.memory --gap-ms`), nothing
    closes: the state at the end holds `users * copies` sessions of the traffic's own shape
    (events, products, duplicates), their events below the watermark folded as in the job.
    `users` of the result is the number of open sessions it makes.
    """
    per_user: dict[str, list[tuple[int, str, bytes]]] = {}
    with source.path.open("rb") as f:
        for line in f:
            try:
                e = orjson.loads(line)
                user, ts, kind, event_id = e["user_id"], e["ts"], e["type"], e["event_id"]
            except Exception:  # noqa: BLE001  a bad record: the decoder rejects it anyway
                continue
            if isinstance(user, str) and isinstance(ts, int) and isinstance(event_id, str):
                per_user.setdefault(user, []).append((ts, event_id, kind))
    cut: dict[str, int] = {}  # user -> first ts no longer kept
    for user, events in per_user.items():
        events.sort()
        end = events[-1][0] + 1
        previous = events[0][0]
        for ts, _id, kind in events:
            if ts - previous > gap_ms or kind == "logout":
                end = ts
                break
            previous = ts
        cut[user] = end
    # Users whose first session has an event before its cut (all but those starting on a logout).
    kept = sum(1 for user, events in per_user.items() if events[0][0] < cut[user])
    del per_user
    copies = max(1, -(-open_sessions // max(kept, 1)))
    path = directory / f"realistic-open-{source.users}u-x{copies}.jsonl"
    users: set[str] = set()
    lines = 0
    first = last = None
    marker_user, marker_event = b'"user_id":"', b'"event_id":"'
    with source.path.open("rb") as f, path.open("wb") as out:
        chunk: list[bytes] = []
        for line in f:
            try:
                e = orjson.loads(line)
                user, ts = e["user_id"], e["ts"]
            except Exception:  # noqa: BLE001
                continue
            if not isinstance(ts, int) or ts >= cut.get(user, ts):
                continue
            users.add(user)
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
            line = line.rstrip(b"\n")
            u = line.index(marker_user) + len(marker_user)
            u_end = line.index(b'"', u)
            v = line.index(marker_event) + len(marker_event)
            v_end = line.index(b'"', v)
            (a, a_end), (b, b_end) = sorted(((u, u_end), (v, v_end)))
            for k in range(copies):
                suffix = b"-%d" % k
                chunk.append(line[:a_end] + suffix + line[a_end:b_end] + suffix + line[b_end:])
            lines += copies
            if len(chunk) >= 20_000:
                out.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")
    return Dataset(path, len(users) * copies, lines, lines, int(first or 0), int(last or 0))


def repeated(directory: Path, source: Dataset, times: int, pause_ms: int = 600_000) -> Dataset:
    """The dataset `times` times over, each copy later in event time than the one before (by the
    source's span plus `pause_ms`, so nothing of a copy is late or joins the previous one's
    sessions) and with distinct event ids ("-k" appended). The same users come back in every copy:
    their profiles carry over, as in a longer run of the same traffic."""
    span = source.last_ts - source.first_ts + pause_ms
    path = directory / f"{source.path.stem}-x{times}.jsonl"
    marker_ts, marker_event = b'"ts":', b'"event_id":"'
    lines = 0
    with path.open("wb") as out:
        for k in range(times):
            shift, suffix = k * span, b"-%d" % k
            chunk: list[bytes] = []
            with source.path.open("rb") as f:
                for line in f:
                    line = line.rstrip(b"\n")
                    t = line.find(marker_ts)
                    v = line.find(marker_event)
                    if t < 0 or v < 0:  # not a generator line: as it is (rejected anyway)
                        chunk.append(line)
                        continue
                    t += len(marker_ts)
                    t_end = t
                    while t_end < len(line) and 48 <= line[t_end] <= 57:
                        t_end += 1
                    v_end = line.index(b'"', v + len(marker_event))
                    if t_end == t:  # an RFC 3339 string: not shifted (traffic() writes epoch ms)
                        raise ValueError("repeated() needs epoch-ms timestamps")
                    ts = b"%d" % (int(line[t:t_end]) + shift)
                    if v_end < t:
                        line = line[:v_end] + suffix + line[v_end:t] + ts + line[t_end:]
                    else:
                        line = line[:t] + ts + line[t_end:v_end] + suffix + line[v_end:]
                    chunk.append(line)
                    if len(chunk) >= 20_000:
                        out.write(b"\n".join(chunk) + b"\n")
                        lines += len(chunk)
                        chunk.clear()
            if chunk:
                out.write(b"\n".join(chunk) + b"\n")
                lines += len(chunk)
    return Dataset(path, source.users, source.events * times, lines, source.first_ts,
                   source.last_ts + (times - 1) * span)


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
