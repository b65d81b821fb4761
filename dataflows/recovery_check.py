"""Recovery mistakes found before the run, each as one line that names the fix.

Bytewax meets a missing recovery directory with a bare `FileNotFoundError` and a store without
partitions with `NoPartitionsError`, both as tracebacks once the run starts. Worse, it resumes a
store written with other session settings without a word: a different `PROMO_SHARDS` re-routes
users away from the shard that holds their open sessions (orphaned until end of input or idle
time, then closed a second time), and a different gap or allowed lateness folds the stored
sessions and watermark by rules they were not written with. So the flow module checks the store
`python -m bytewax.run` was given before the run, and records the settings it writes with in a
side file next to the partitions (`SETTINGS_FILE`). Stores written before that file existed have
their shard count derived from the snapshots' state keys; their gap is taken as it is now.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from dataflows.settings import Settings
from dataflows.state_query import SESSIONS_STEP
from promotion.routing import shard_keys

#: Next to the partitions; Bytewax only opens `*.sqlite3` files.
SETTINGS_FILE: Final = "promotions-store.json"
INIT_HINT: Final = "promotions recovery init {directory} N"


class RecoveryStoreError(SystemExit):
    """A recovery store that cannot be resumed as configured: exits with one line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"session-promotions: recovery store: {message}")


@dataclass(frozen=True)
class StoreSettings:
    """The settings that decide what a store's session state means."""

    shards: int
    gap_ms: int
    allowed_lateness_ms: int

    @classmethod
    def of(cls, settings: Settings) -> StoreSettings:
        config = settings.session_config()
        return cls(settings.shards, config.gap_ms, config.lateness_ms)


def bytewax_run_arguments() -> dict[str, Any] | None:
    """The arguments `python -m bytewax.run` parsed (0.21 keeps them in `__main__.kwargs`, with
    `recovery_config` built, before it imports the flow module); None under any other runner."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is None or spec.name != "bytewax.run":
        return None
    parsed = getattr(main, "kwargs", None)
    return parsed if isinstance(parsed, dict) and "recovery_config" in parsed else None


def run_recovery_directory() -> Path | None:
    """The store directory `bytewax.run` was given; None without one, or under another runner."""
    arguments = bytewax_run_arguments()
    config = arguments["recovery_config"] if arguments is not None else None
    return None if config is None else Path(config.db_dir)


def check_run_store(settings: Settings) -> None:
    """Check the store `bytewax.run` was given (if any) before the run starts."""
    directory = run_recovery_directory()
    if directory is not None:
        clustered = bool(bytewax_run_arguments().get("addresses"))  # type: ignore[union-attr]
        check_store(directory, StoreSettings.of(settings), clustered)


def check_store(directory: Path, wanted: StoreSettings, clustered: bool = False) -> None:
    """Refuse a missing directory, a store without partitions (a process of a cluster may hold
    none), and a store written with other settings; record the settings of a new store."""
    hint = INIT_HINT.format(directory=directory)
    if not directory.exists():
        raise RecoveryStoreError(f"{directory} does not exist; create the store once with `{hint}`")
    if not directory.is_dir():
        raise RecoveryStoreError(f"{directory} is not a directory; create the store with `{hint}`")
    parts = sorted(p for p in directory.glob("*.sqlite3") if p.is_file())
    if not parts:
        if clustered:
            return  # another process of the cluster holds the partitions
        raise RecoveryStoreError(f"{directory} holds no recovery partitions; create them once "
                                 f"with `{hint}` (N: at least the most workers you will run)")
    keys, complete = _stored_shard_keys(parts)
    recorded_file = directory / SETTINGS_FILE
    if keys:
        recorded = _read_recorded(recorded_file)
        if recorded is None:
            _check_shard_keys(directory, keys, complete, wanted.shards)
        else:
            _compare(directory, recorded, wanted)
            return
    _write_recorded(recorded_file, wanted)


def _stored_shard_keys(parts: list[Path]) -> tuple[set[str], bool]:
    """The session step's state keys in these partitions, and whether they are all of the
    store's partitions (then every shard of the writing run is among the keys)."""
    keys: set[str] = set()
    indexes: set[int] = set()
    counts: set[int] = set()
    for part in parts:
        try:  # read-write, as Bytewax opens it next: a read-only reader would leave -wal files
            db = sqlite3.connect(part, timeout=5.0)
            try:
                for index, count in db.execute("SELECT part_index, part_count FROM parts"):
                    indexes.add(index)
                    counts.add(count)
                keys.update(key for (key,) in db.execute(
                    "SELECT DISTINCT state_key FROM snaps WHERE step_id = ?", (SESSIONS_STEP,)))
            finally:
                db.close()
        except sqlite3.Error as error:
            raise RecoveryStoreError(f"{part} is not a Bytewax recovery partition ({error})") from None
    complete = len(counts) == 1 and indexes == set(range(next(iter(counts))))
    return keys, complete


def _check_shard_keys(directory: Path, keys: set[str], complete: bool, shards: int) -> None:
    """A store without a settings file: its shard keys must be those of `shards` shards."""
    if keys <= set(shard_keys(shards)) and (not complete or len(keys) == shards):
        return
    if complete:
        written = str(len(keys))
    else:
        indexes = [int(k.rpartition("-")[2]) for k in keys if k.rpartition("-")[2].isdigit()]
        written = f"at least {max(indexes, default=0) + 1}"
    _mismatch(directory, "PROMO_SHARDS", str(shards), written)


def _compare(directory: Path, recorded: StoreSettings, wanted: StoreSettings) -> None:
    if recorded.shards != wanted.shards:
        _mismatch(directory, "PROMO_SHARDS", str(wanted.shards), str(recorded.shards))
    for name, old, new in (("PROMO_GAP_SECONDS", recorded.gap_ms, wanted.gap_ms),
                           ("PROMO_ALLOWED_LATENESS_SECONDS", recorded.allowed_lateness_ms,
                            wanted.allowed_lateness_ms)):
        if old != new:
            _mismatch(directory, name, f"{new / 1000:g}", f"{old / 1000:g}")


def _mismatch(directory: Path, name: str, new: str, old: str) -> None:
    why = ("users would move to other shards and orphan their stored sessions"
           if name == "PROMO_SHARDS" else "its sessions and watermark were built with the old value")
    raise RecoveryStoreError(
        f"{name}={new}, but {directory} was written with {old} ({why}); resume with {old}, or "
        f"start a new store with `{INIT_HINT.format(directory='NEW_DIR')}`")


def _read_recorded(path: Path) -> StoreSettings | None:
    try:
        document = orjson.loads(path.read_bytes())
        return StoreSettings(int(document["shards"]), int(document["gap_ms"]),
                             int(document["allowed_lateness_ms"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RecoveryStoreError(f"cannot read {path} ({error}); restore it from the store's "
                                 "backup, or delete it to record the current settings") from None


def _write_recorded(path: Path, wanted: StoreSettings) -> None:
    """Written whole, then renamed: a crash never leaves half a file."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        scratch.write_bytes(orjson.dumps(asdict(wanted), option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(scratch, path)
    except OSError as error:
        raise RecoveryStoreError(f"cannot write {path}: {error.strerror}") from None
