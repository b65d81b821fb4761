"""Recovery mistakes explain themselves: real `python -m bytewax.run` processes on real stores.

Without the check, a missing directory ends in a `FileNotFoundError` traceback, a directory
without partitions in `NoPartitionsError`, and a store resumed with another `PROMO_SHARDS` or
gap exits 0 with notifications that neither setting gives (orphaned and split sessions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main

from dataflows.flow import build_flow, default_wiring
from dataflows.recovery_check import (SETTINGS_FILE, RecoveryStoreError, StoreSettings,
                                      check_store)
from dataflows.settings import load_settings
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig
from tests.fixtures.make_recovery_fixture import AbortingSource

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(shards=8, batch_size=100, allowed_lateness_seconds=5, gap_seconds=300)
PARTITION = "file:events.jsonl"


def _outputs(work: Path) -> dict[str, str]:
    return {"output": str(work / "notifications.jsonl"),
            "rejects_output": str(work / "rejects.jsonl"), "late_output": str(work / "late.jsonl")}


def bytewax_run(work: Path, store: Path, **changes: object) -> subprocess.CompletedProcess:
    """The service on `work/events.jsonl`, resuming from `store`, with SETTINGS and `changes`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update({f"PROMO_{k.upper()}": str(v) for k, v in {**SETTINGS, **changes}.items()})
    env.update({f"PROMO_{k.upper()}": v for k, v in _outputs(work).items()})
    env.update(PROMO_INPUT=str(work / "events.jsonl"), BYTEWAX_RECOVERY_DIRECTORY=str(store),
               BYTEWAX_SNAPSHOT_INTERVAL="1", BYTEWAX_RECOVERY_BACKUP_INTERVAL="0")
    return subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


def _one_line_failure(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 1, run.stderr[-2000:]
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, run.stderr
    return run.stderr


def _notification_ids(work: Path) -> Counter:
    lines = (work / "notifications.jsonl").read_bytes().splitlines()
    return Counter(orjson.loads(line)["notification_id"] for line in lines)


def _offline_ids(work: Path) -> Counter:
    config = SessionConfig(gap_ms=SETTINGS["gap_seconds"] * 1000,
                           lateness_ms=SETTINGS["allowed_lateness_seconds"] * 1000)
    result = run_offline((work / "events.jsonl").read_bytes().splitlines(), config,
                         load_rules(DEFAULT_RULES_PATH), shards=SETTINGS["shards"],
                         batch_size=SETTINGS["batch_size"], partition=PARTITION)
    return Counter(n["notification_id"] for n in result.notifications)


@pytest.fixture(scope="module")
def midway(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Events and a store written midway through them by an earlier release (no settings file)."""
    work = tmp_path_factory.mktemp("midway")
    events = work / "events.jsonl"
    write_jsonl(events, GeneratorConfig(seed=11, users=150, events=3_000, rate_per_s=3.0,
                                        max_disorder_ms=2_000, duplicate_rate=0.01))
    settings = load_settings(input=events, **_outputs(work), **SETTINGS)
    wiring = default_wiring(settings)
    wiring = type(wiring)(**{**wiring.__dict__, "source": AbortingSource(events, 100, 15)})
    (work / "store").mkdir()
    init_db_dir(work / "store", 2)
    run_main(build_flow(settings, wiring), epoch_interval=timedelta(milliseconds=0),
             recovery_config=RecoveryConfig(str(work / "store")))
    assert not (work / "store" / SETTINGS_FILE).exists()
    return work


@pytest.fixture()
def work(midway: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(midway, tmp_path / "work"))


def test_a_missing_directory_names_the_init_command(work: Path) -> None:
    missing = work / "no-store"
    stderr = _one_line_failure(bytewax_run(work, missing))
    assert f"{missing} does not exist" in stderr
    assert f"promotions recovery init {missing} N" in stderr
    assert not missing.exists()


def test_a_directory_without_partitions_names_the_init_command(work: Path) -> None:
    empty = work / "empty"
    empty.mkdir()
    stderr = _one_line_failure(bytewax_run(work, empty))
    assert f"{empty} holds no recovery partitions" in stderr
    assert f"promotions recovery init {empty} N" in stderr


def test_another_shard_count_than_the_store_was_written_with_is_refused(work: Path) -> None:
    stderr = _one_line_failure(bytewax_run(work, work / "store", shards=4))
    assert "PROMO_SHARDS=4, but" in stderr and "was written with 8" in stderr
    assert "orphan" in stderr


def test_resume_records_the_settings_then_refuses_another_gap(work: Path) -> None:
    """The store of an earlier release resumes (its shard keys fit), which records its settings;
    from then on a changed gap or lateness is named, and the right settings still finish exactly."""
    store = work / "store"
    stderr = _one_line_failure(bytewax_run(work, store, shards=16))
    assert "PROMO_SHARDS=16, but" in stderr and "written with 8" in stderr
    finished = bytewax_run(work, store)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert orjson.loads((store / SETTINGS_FILE).read_bytes()) == {
        "shards": 8, "gap_ms": 300_000, "allowed_lateness_ms": 5_000}
    assert _notification_ids(work) == _offline_ids(work)

    stderr = _one_line_failure(bytewax_run(work, store, gap_seconds=60))
    assert "PROMO_GAP_SECONDS=60, but" in stderr and "was written with 300" in stderr
    stderr = _one_line_failure(bytewax_run(work, store, allowed_lateness_seconds=0.5))
    assert "PROMO_ALLOWED_LATENESS_SECONDS=0.5, but" in stderr and "written with 5" in stderr
    assert bytewax_run(work, store).returncode == 0


# -- the check itself ----------------------------------------------------------------------------


def test_a_store_without_state_yet_takes_the_settings_of_its_latest_start(tmp_path: Path) -> None:
    """A start that failed before the first snapshot (say Kafka was down) fixes nothing."""
    init_db_dir(tmp_path, 2)
    check_store(tmp_path, StoreSettings(8, 300_000, 5_000))
    check_store(tmp_path, StoreSettings(4, 60_000, 0))
    assert orjson.loads((tmp_path / SETTINGS_FILE).read_bytes())["shards"] == 4


def test_a_process_of_a_cluster_may_hold_no_partitions(tmp_path: Path) -> None:
    check_store(tmp_path, StoreSettings(8, 300_000, 5_000), clustered=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RecoveryStoreError, match="holds no recovery partitions"):
        check_store(tmp_path, StoreSettings(8, 300_000, 5_000))


def test_partition_keys_of_another_width_are_refused_even_when_partitions_are_elsewhere(
        work: Path) -> None:
    """Half of a store (the other partition on another process): 8 shards' keys are not 64's."""
    store = work / "store"
    (store / "part-1.sqlite3").unlink()
    with pytest.raises(RecoveryStoreError, match="PROMO_SHARDS=64, but .* written with at least"):
        check_store(store, StoreSettings(64, 300_000, 5_000))


def test_a_damaged_settings_file_or_partition_is_one_line(work: Path) -> None:
    store = work / "store"
    (store / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(RecoveryStoreError, match=f"cannot read .*{SETTINGS_FILE}"):
        check_store(store, StoreSettings(8, 300_000, 5_000))
    (store / "part-1.sqlite3").write_text("not a database")
    with pytest.raises(RecoveryStoreError, match="part-1.sqlite3 is not a Bytewax recovery partition"):
        check_store(store, StoreSettings(8, 300_000, 5_000))


def test_a_backup_keeps_the_settings_the_store_was_written_with(work: Path, tmp_path: Path) -> None:
    from dataflows.cli import main

    store, copy = work / "store", tmp_path / "backup"
    check_store(store, StoreSettings(8, 300_000, 5_000))
    assert main(["recovery", "backup", str(store), str(copy)]) == 0
    assert (copy / SETTINGS_FILE).read_bytes() == (store / SETTINGS_FILE).read_bytes()
    with pytest.raises(RecoveryStoreError, match="PROMO_GAP_SECONDS=60, but"):
        check_store(copy, StoreSettings(8, 60_000, 5_000))
