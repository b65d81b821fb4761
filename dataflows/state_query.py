"""`promotions state`: open sessions read from a recovery store, as Bytewax would resume them.

A store is a directory of Bytewax 0.21 SQLite partitions. Reading it is read-only and safe while
the service writes: every partition is opened read-only, and the snapshot shown is the one a
restart would resume from at that moment (`read_store`), never a mix of epochs.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import sqlite3
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from promotion.events import LOGOUT
from promotion.snapshot import load_state
from promotion.timefmt import format_ms
from promotion.watermark import NO_TIME

#: The dataflow's id and its session step (dataflows/flow.py).
SESSIONS_STEP: Final = "session_promotions.sessions"
INPUT_STEP: Final = "session_promotions.input"
#: A store that moves on while it is read is read again (a snapshot interval is seconds).
ATTEMPTS: Final = 40
RETRY_PAUSE_S: Final = 0.05

T = TypeVar("T")
EVENT_TS, EVENT_ID, EVENT_TYPE, EVENT_PRODUCT, EVENT_QUANTITY = 0, 1, 2, 4, 7


class StateError(Exception):
    """A problem with the store or the query, reported as one line."""


# -- the store -----------------------------------------------------------------------------------


@dataclass
class Progress:
    """Bytewax's progress tables (parts, exs, fronts, commits), merged over all partitions."""

    part_counts: set[int]
    part_indexes: set[int]
    executions: dict[int, tuple[int, int]]  # ex_num -> (worker_count, resume_epoch)
    fronts: dict[tuple[int, int], int]  # (ex_num, worker_index) -> worker_frontier
    commits: dict[int, int]  # part_index -> commit_epoch


def resume_point(progress: Progress) -> tuple[int, int]:
    """(execution, epoch) a restart would resume from, as Bytewax 0.21.1 computes it.

    `RecoveryPart::resume_from` in bytewax src/recovery.rs: in the latest execution, each worker's
    frontier is the largest it recorded in `fronts`, or the execution's resume epoch if it
    recorded none; the resume epoch is the smallest of them. With no execution yet, epoch 1.
    """
    if not progress.executions:
        return 0, 1
    ex = max(progress.executions)
    workers, resumed_at = progress.executions[ex]
    frontiers = {w: resumed_at for w in range(workers)}
    for (front_ex, worker), frontier in progress.fronts.items():
        if front_ex == ex:
            frontiers[worker] = max(frontiers.get(worker, resumed_at), frontier)
    return ex, min(frontiers.values())


@dataclass(frozen=True)
class StoreView:
    """One step's state in the snapshot a restart would resume from."""

    directory: Path
    partitions: int
    execution: int
    resume_epoch: int
    #: state key -> (snapshot epoch, the value `visit` made of its snapshot); discarded keys absent
    keys: dict[str, tuple[int, Any]]


def read_store(directory: Path, visit: Callable[[str, int, object], T],
               step_id: str = SESSIONS_STEP) -> StoreView:
    """Call `visit(state_key, snap_epoch, state)` on each key's state in the resume snapshot.

    The resume snapshot is what Bytewax 0.21.1 loads on restart: per state key, the newest row
    with `snap_epoch < resume epoch` (strictly: `SerializedSnapshotLoader` in src/recovery.rs),
    none if that row is NULL (the key was discarded). Two rules make it consistent while the
    service writes. Progress is read first: a worker frontier is written only after the
    snapshots of earlier epochs, so they are all there. Each partition's snapshots are then read
    in one read transaction whose view has `commit_epoch < resume epoch`: the garbage collection
    of a commit keeps the newest snapshot at or below the committed epoch and every later one, so
    nothing this read needs is gone from that view. If the store moved on too far in between, it
    is read again.
    """
    parts = _partition_files(directory)
    problem = "the store kept changing while it was read"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        connections: list[_Partition] = []
        try:
            connections.extend(_Partition(path) for path in parts)
            progress = _merged_progress(connections)
            execution, epoch = resume_point(progress)
            late = sorted(i for i, c in progress.commits.items() if c > epoch)
            if late:  # Bytewax's own check; while the service runs, also a race: read again
                problem = (f"recovery partitions {sorted(progress.part_indexes - set(late))} are "
                           f"too old to resume from epoch {epoch} (Bytewax would refuse to resume)")
                continue
            keys = _snapshots(connections, step_id, epoch, visit, strict=attempt < ATTEMPTS - 1)
            if keys is not None and all(c.unchanged() for c in connections):
                return StoreView(directory, len(progress.part_indexes), execution, epoch, keys)
        except sqlite3.Error as error:
            problem = f"cannot read {directory}: {error}"
            if not _transient(error):
                break
        finally:
            for connection in connections:
                connection.close()
    raise StateError(problem)


def _partition_files(directory: Path) -> list[Path]:
    """The files Bytewax would open: every `*.sqlite3` in the directory."""
    if not directory.exists():
        raise StateError(f"no such directory: {directory}")
    if not directory.is_dir():
        raise StateError(f"not a directory: {directory}")
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix == ".sqlite3" and p.is_file())
    except OSError as error:
        raise StateError(f"cannot list {directory}: {error.strerror}") from None
    if not files:
        raise StateError(f"not a recovery store: no *.sqlite3 partitions in {directory}")
    return files


class _Partition:
    """A read-only connection to one partition file.

    While the service has the partition open, its `-wal` file exists and the connection shares
    the service's WAL (`mode=ro`). A partition nobody has open is read as immutable, so reading
    leaves no `-wal`/`-shm` files behind; that it stayed untouched is checked after the read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wal = path.with_name(path.name + "-wal")
        self._closed_file = self._stat() if not self._wal.exists() else None
        mode = "immutable=1" if self._closed_file is not None else "mode=ro"
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?{mode}"
        self.db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)

    def _stat(self) -> tuple[int, int]:
        info = self.path.stat()
        return info.st_size, info.st_mtime_ns

    def query(self, sql: str, *args: object) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as error:
            if _transient(error):
                raise
            raise StateError(f"not a Bytewax recovery partition: {self.path} ({error})") from None

    def unchanged(self) -> bool:
        """False if the service opened a partition that was read as immutable."""
        return self._closed_file is None or (not self._wal.exists() and self._stat() == self._closed_file)

    def close(self) -> None:
        self.db.close()


def _transient(error: sqlite3.Error) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _merged_progress(connections: list[_Partition]) -> Progress:
    progress = Progress(set(), set(), {}, {}, {})
    for part in connections:
        part.query("BEGIN")
        try:
            for index, count in part.query("SELECT part_index, part_count FROM parts"):
                progress.part_indexes.add(index)
                progress.part_counts.add(count)
            for ex, workers, resume in part.query(
                    "SELECT ex_num, worker_count, resume_epoch FROM exs"):
                progress.executions[ex] = (workers, resume)
            for ex, worker, frontier in part.query(
                    "SELECT ex_num, worker_index, worker_frontier FROM fronts"):
                key = (ex, worker)
                progress.fronts[key] = max(frontier, progress.fronts.get(key, frontier))
            for index, epoch in part.query("SELECT part_index, commit_epoch FROM commits"):
                progress.commits[index] = epoch
        finally:
            part.query("ROLLBACK")
    if not progress.part_counts:
        raise StateError("not a recovery store: its partitions have no partition metadata")
    if len(progress.part_counts) > 1:
        raise StateError("inconsistent partition counts in the recovery partitions")
    (count,) = progress.part_counts
    missing = set(range(count)) - progress.part_indexes
    if missing:
        raise StateError(f"missing recovery partitions {sorted(missing)} of {count}")
    return progress


def _snapshots(connections: list[_Partition], step_id: str, epoch: int,
               visit: Callable[[str, int, object], T], strict: bool) -> dict[str, tuple[int, T]] | None:
    """Each key's newest snapshot before `epoch`, visited; None if the store moved on too far."""
    found: dict[str, tuple[int, _Partition]] = {}
    try:
        for part in connections:  # every read transaction stays open until all are visited
            part.query("BEGIN")
            (committed,) = part.query("SELECT MAX(commit_epoch) FROM commits")[0]
            if committed is not None and (committed > epoch or (strict and committed == epoch)):
                return None  # garbage collection may have removed a snapshot this read needs
            for key, snap_epoch in part.query(
                    "SELECT state_key, MAX(snap_epoch) FROM snaps"
                    " WHERE step_id = ? AND snap_epoch < ? GROUP BY state_key", step_id, epoch):
                if key not in found or snap_epoch > found[key][0]:  # later epochs load last
                    found[key] = (snap_epoch, part)
        keys: dict[str, tuple[int, T]] = {}
        for key in sorted(found):
            snap_epoch, part = found[key]
            (blob,) = part.query("SELECT ser_change FROM snaps WHERE step_id = ? AND state_key = ?"
                                 " AND snap_epoch = ?", step_id, key, snap_epoch)[0]
            if blob is not None:  # NULL: the key was discarded
                keys[key] = (snap_epoch, visit(key, snap_epoch, _unpickle(blob, key)))
        return keys
    finally:
        for part in connections:
            if part.db.in_transaction:
                part.query("ROLLBACK")


class _PlainUnpickler(pickle.Unpickler):
    """Bytewax pickles each state; ours is plain data, so no class is ever looked up."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refers to {module}.{name}")


def _unpickle(blob: bytes, key: str) -> object:
    try:
        return _PlainUnpickler(io.BytesIO(blob)).load()
    except Exception as error:  # any malformed pickle: one line, not a traceback
        raise StateError(f"snapshot of {key} is not plain pickled data: {error}") from None


def shard_state(key: str, snap_epoch: int, state: object) -> dict[str, Any]:
    """A session shard's snapshot (bytes of any supported format) as a format-7 document."""
    if not isinstance(state, (bytes, bytearray)):
        raise StateError(f"snapshot of {key} at epoch {snap_epoch} is {type(state).__name__}, "
                         "not a shard snapshot")
    try:
        return load_state(bytes(state))
    except Exception as error:
        raise StateError(f"snapshot of {key} at epoch {snap_epoch}: {error}") from None


# -- sessions ------------------------------------------------------------------------------------


def open_sessions(user: dict[str, Any], gap_ms: int) -> list[dict[str, Any]]:
    """A user's open sessions: the document's (events folded below the watermark), then each
    pending event in (ts, event_id) order joins the last one, unless that one ended with a logout
    or the event is more than `gap_ms` after its end (two events a gap apart share a session).
    `cart` holds the folded events only; `pending` lists the events not folded yet. Stores
    written before snapshot format 5 kept no event ids of folded events."""
    spans = [{"start": s["start"], "end": s["end"], "events": s["events"],
              "logged_out": bool(s["logged_out"]), "cart": dict(s["cart"]),
              "event_ids": list(s["event_ids"]), "pending": []} for s in user["sessions"]]
    for event in sorted(user["pending"], key=lambda e: (e[EVENT_TS], e[EVENT_ID])):
        ts = event[EVENT_TS]
        if not spans or spans[-1]["logged_out"] or ts - spans[-1]["end"] > gap_ms:
            spans.append({"start": ts, "end": ts, "events": 0, "logged_out": False, "cart": {},
                          "event_ids": [], "pending": []})
        span = spans[-1]
        span["end"] = max(span["end"], ts)
        span["events"] += 1
        span["event_ids"].append(event[EVENT_ID])
        span["pending"].append(event)
        span["logged_out"] = span["logged_out"] or event[EVENT_TYPE] == LOGOUT
    return spans


def deadline(sessions: list[dict[str, Any]], gap_ms: int) -> int | None:
    """When the first open session closes if nothing joins it: the watermark must pass its
    logout, or its end + gap. None if nothing is open."""
    if not sessions:
        return None
    first = sessions[0]
    return first["end"] if first["logged_out"] else first["end"] + gap_ms


def gap_ms_from(gap_seconds: float | None) -> int:
    """The session gap: given, else PROMO_GAP_SECONDS, else the service's default (300 s)."""
    source = "--gap-seconds"
    if gap_seconds is None:
        raw = os.environ.get("PROMO_GAP_SECONDS")
        if raw is None:
            from dataflows.settings import Settings

            gap_seconds = float(Settings.model_fields["gap_seconds"].default)
        else:
            source = "PROMO_GAP_SECONDS"
            try:
                gap_seconds = float(raw)
            except ValueError:
                raise StateError(f"PROMO_GAP_SECONDS: not a number: {raw!r}") from None
    if not math.isfinite(gap_seconds) or gap_seconds < 0.001:
        raise StateError(f"{source}: must be at least 0.001 seconds (got {gap_seconds})")
    return round(gap_seconds * 1000)


def _time(ms: int | None) -> str | None:
    return None if ms is None or ms == NO_TIME else format_ms(ms)


def _rules_version(state: dict[str, Any]) -> str | None:
    rules = state.get("rules")
    return rules.get("version") if isinstance(rules, dict) else None


# -- the two queries -----------------------------------------------------------------------------


def summary(directory: Path, gap_ms: int) -> dict[str, Any]:
    """Per shard: open users, open sessions, pending events, profiles and watermark; per input
    partition the newest event time seen (the slowest shard's); the rules versions in force."""

    def count(key: str, snap_epoch: int, state: object) -> dict[str, Any]:
        doc = shard_state(key, snap_epoch, state)
        users = doc["users"].values()
        return {"key": key, "snapshot_epoch": snap_epoch, "users": len(doc["users"]),
                "sessions": sum(len(open_sessions(u, gap_ms)) for u in users),
                "pending_events": sum(len(u["pending"]) for u in users),
                "profiles": len(doc["profiles"]), "watermark_ms": doc["watermark"],
                "high": dict(doc["high"]), "rules_version": _rules_version(doc)}

    view = read_store(directory, count)
    shards = [counts for _, counts in view.keys.values()]
    high: dict[str, int] = {}
    for shard in shards:
        for partition, ts in shard.pop("high").items():
            high[partition] = min(ts, high.get(partition, ts))
    watermarks = [s["watermark_ms"] for s in shards]
    for shard in shards:
        shard["watermark"] = _time(shard.pop("watermark_ms"))
    totals = {name: sum(s[name] for s in shards)
              for name in ("users", "sessions", "pending_events", "profiles")}
    return {"store": str(directory), "partitions": view.partitions, "execution": view.execution,
            "resume_epoch": view.resume_epoch, "gap_ms": gap_ms,
            "totals": {"shards": len(shards), **totals},
            "watermark": _time(min(watermarks)) if watermarks else None,
            "input_partitions": {p: {"newest_event": _time(ts)} for p, ts in sorted(high.items())},
            "rules_versions": [{"version": v, "shards": n} for v, n in
                               Counter(s["rules_version"] for s in shards).items()],
            "shards": shards}


def user_state(directory: Path, user_id: str, gap_ms: int) -> dict[str, Any]:
    """One user's open sessions, pending events, profile and deadline; StateError if unknown."""
    needles = (user_id.encode(), orjson.dumps(user_id)[1:-1])  # as pickled, as JSON

    def pick(key: str, snap_epoch: int, state: object) -> dict[str, Any] | None:
        if isinstance(state, (bytes, bytearray)) and not any(n in state for n in needles):
            return None  # cheap: most shards are never decoded
        doc = shard_state(key, snap_epoch, state)
        user, profile = doc["users"].get(user_id), doc["profiles"].get(user_id)
        if user is None and profile is None:
            return None
        return {"user": user, "profile": profile, "watermark": doc["watermark"],
                "rules_version": _rules_version(doc)}

    view = read_store(directory, pick)
    hits = [(key, epoch, found) for key, (epoch, found) in view.keys.items() if found is not None]
    if not hits:
        if not view.keys:
            raise StateError(f"no shard snapshot yet in {directory} (resume epoch {view.resume_epoch})")
        raise StateError(f"user {user_id!r} not found in {directory}: no open session and no "
                         f"profile in the snapshot (resume epoch {view.resume_epoch})")
    if len(hits) > 1:
        raise StateError(f"user {user_id!r} is in several shards: {[h[0] for h in hits]}")
    key, snap_epoch, found = hits[0]
    sessions = open_sessions(found["user"], gap_ms) if found["user"] is not None else []
    closes = deadline(sessions, gap_ms)
    return {"user_id": user_id, "shard": key, "snapshot_epoch": snap_epoch,
            "store": str(directory), "resume_epoch": view.resume_epoch, "gap_ms": gap_ms,
            "watermark": _time(found["watermark"]), "deadline": _time(closes),
            "rules_version": found["rules_version"],
            "sessions": [_session_out(s) for s in sessions],
            "profile": _profile_out(found["profile"])}


def _session_out(session: dict[str, Any]) -> dict[str, Any]:
    return {"start": _time(session["start"]), "end": _time(session["end"]),
            "events": session["events"], "logged_out": session["logged_out"],
            "cart": session["cart"], "event_ids": session["event_ids"],
            "pending": [{"ts": _time(e[EVENT_TS]), "event_id": e[EVENT_ID], "type": e[EVENT_TYPE],
                         "product_id": e[EVENT_PRODUCT], "quantity": e[EVENT_QUANTITY]}
                        for e in session["pending"]]}


def _profile_out(profile: dict[str, Any] | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {"last_session_end": _time(profile["last_ts"]), "sessions": profile["sessions"],
            "purchases": [_time(ts) for ts in profile["purchases"]],
            "interest": dict(sorted(profile["interest"].items(), key=lambda kv: -kv[1]))}


# -- text ----------------------------------------------------------------------------------------


def render_summary(report: dict[str, Any]) -> str:
    totals = report["totals"]
    lines = [f"store {report['store']}: {report['partitions']} partitions, resume epoch "
             f"{report['resume_epoch']} (execution {report['execution']}), "
             f"{totals['shards']} shards with state"]
    header = f"{'shard':<12} {'epoch':>6} {'users':>8} {'sessions':>8} {'pending':>8} {'profiles':>8}  watermark"
    lines.append(header)
    for s in report["shards"]:
        lines.append(f"{s['key']:<12} {s['snapshot_epoch']:>6} {s['users']:>8} {s['sessions']:>8} "
                     f"{s['pending_events']:>8} {s['profiles']:>8}  {s['watermark'] or 'none yet'}")
    lines.append(f"{'total':<12} {'':>6} {totals['users']:>8} {totals['sessions']:>8} "
                 f"{totals['pending_events']:>8} {totals['profiles']:>8}  "
                 f"{report['watermark'] or 'none yet'} (slowest)")
    lines.append("newest event time per input partition (slowest shard):")
    for partition, seen in report["input_partitions"].items():
        lines.append(f"  {partition}: {seen['newest_event'] or 'nothing yet'}")
    versions = ", ".join(f"{r['version'] or 'none recorded'} ({r['shards']} shards)"
                         for r in report["rules_versions"])
    lines.append(f"rules version in force: {versions or 'none'}")
    return "\n".join(lines)


def render_user(report: dict[str, Any]) -> str:
    lines = [f"user {report['user_id']}: {report['shard']}, snapshot epoch "
             f"{report['snapshot_epoch']} (resume epoch {report['resume_epoch']} of {report['store']})",
             f"watermark {report['watermark'] or 'none yet'}; deadline "
             f"{report['deadline'] or 'none (nothing open)'} (gap {report['gap_ms'] / 1000:g} s); "
             f"rules {report['rules_version'] or 'none recorded'}",
             f"open sessions: {len(report['sessions'])}"]
    for n, s in enumerate(report["sessions"], 1):
        cart = ", ".join(f"{p} x{q}" for p, q in s["cart"].items()) or "empty"
        ended = ", logged out" if s["logged_out"] else ""
        lines.append(f"  {n}. {s['start']} .. {s['end']}: {s['events']} events"
                     f" ({len(s['pending'])} pending){ended}; cart (folded events): {cart}")
        for e in s["pending"]:
            product = f" {e['product_id']} x{e['quantity']}" if e["product_id"] else ""
            lines.append(f"     pending {e['ts']} {e['event_id']} {e['type']}{product}")
    profile = report["profile"]
    if profile is None:
        lines.append("profile: none")
    else:
        interest = ", ".join(f"{c} {v:.2f}" for c, v in list(profile["interest"].items())[:5])
        lines.append(f"profile: {profile['sessions']} sessions, last ended "
                     f"{profile['last_session_end']}, {len(profile['purchases'])} purchases; "
                     f"interest: {interest or 'none'}")
    return "\n".join(lines)
