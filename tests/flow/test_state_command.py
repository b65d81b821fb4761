"""`promotions state` against recovery stores written by real runs.

Stores: one written by `run_main` with a source that aborts midway (like the format fixtures),
one being written by a running `python -m bytewax.run`, and the fixtures of every snapshot
format. What the command prints is checked against an oracle: the input prefix the store's
input snapshot covers, sessionized by the independent whole-input reference (tests/reference.py)
and cut at the watermark that prefix implies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main

from dataflows.cli import main
from dataflows.flow import build_flow, default_wiring
from dataflows.settings import load_settings
from dataflows.state_query import (INPUT_STEP, Progress, deadline, open_sessions, read_store,
                                   resume_point, shard_state)
from promotion.decoding import decode_many
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.routing import shard_keys
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.timefmt import format_ms
from tests import reference
from tests.fixtures.make_recovery_fixture import AbortingSource
from tests.fixtures.make_recovery_fixture import SETTINGS as FIXTURE_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SETTINGS = dict(shards=8, batch_size=100, allowed_lateness_seconds=5, gap_seconds=300)
ABORT_AFTER_BATCHES = 25
PARTITION = "file:events.jsonl"


# -- the oracle ----------------------------------------------------------------------------------


@dataclass
class Expected:
    watermark: int
    newest: int
    open: dict[str, list[list[dict]]]  # user -> open sessions' events, in session order
    closed: Counter  # user -> sessions closed before the snapshot

    def shard_of(self, user: str, shards: int) -> str:
        return shard_keys(shards)[zlib.crc32(user.encode()) % shards]


def expected_state(store: Path, events: Path, gap_ms: int, lateness_ms: int) -> Expected:
    """Open sessions implied by the input prefix the store's input snapshot has consumed."""
    view = read_store(store, lambda key, epoch, state: state, step_id=INPUT_STEP)
    ((_, (position, line_count)),) = view.keys.values()
    records = events.read_bytes()[:position].split(b"\n")
    assert records.pop() == b"" and len(records) == line_count
    valid, _ = decode_many(records)
    arrived = [{"ts": e[0], "event_id": e[1], "user_id": e[2], "type": e[3]} for e in valid]
    newest = max(e["ts"] for e in arrived)
    watermark = newest - lateness_ms  # one input partition, no idleness in a short run
    on_time, _ = reference.split_late(arrived, lateness_ms)
    by_user: dict[str, list[dict]] = defaultdict(list)
    for event in reference.deduplicate(on_time):
        by_user[event["user_id"]].append(event)
    opened: dict[str, list[list[dict]]] = {}
    closed: Counter = Counter()
    for user, user_events in by_user.items():
        for session in reference.group_user_events(user_events, gap_ms):
            if watermark > _closes_at(session, gap_ms):
                closed[user] += 1
            else:
                opened.setdefault(user, []).append(session)
    return Expected(watermark, newest, opened, closed)


def _closes_at(session: list[dict], gap_ms: int) -> int:
    last = session[-1]
    return last["ts"] if last["type"] == "logout" else last["ts"] + gap_ms


# -- a store written midway by run_main ----------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    work = tmp_path_factory.mktemp("stopped")
    events, store = work / "events.jsonl", work / "store"
    write_jsonl(events, GeneratorConfig(seed=11, users=150, events=5_000, rate_per_s=3.0,
                                        max_disorder_ms=2_000, duplicate_rate=0.02, bad_rate=0.01))
    settings = load_settings(input=events, output=str(work / "notifications.jsonl"),
                             rejects_output=str(work / "rejects.jsonl"),
                             late_output=str(work / "late.jsonl"), **SETTINGS)
    wiring = default_wiring(settings)
    wiring = type(wiring)(**{**wiring.__dict__,
                             "source": AbortingSource(events, settings.batch_size, ABORT_AFTER_BATCHES)})
    store.mkdir()
    init_db_dir(store, 2)
    run_main(build_flow(settings, wiring), epoch_interval=timedelta(milliseconds=0),
             recovery_config=RecoveryConfig(str(store)))
    expected = expected_state(store, events, SETTINGS["gap_seconds"] * 1000,
                              SETTINGS["allowed_lateness_seconds"] * 1000)
    assert len(expected.open) >= 10 and sum(expected.closed.values()) >= 10  # a real midway
    return store, expected


def _run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["state", *argv, "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_summary_counts_the_open_users_and_sessions_the_input_implies(
        written: tuple[Path, Expected], capsys: pytest.CaptureFixture) -> None:
    store, expected = written
    report = _run_json(capsys, str(store), "--summary", "--gap-seconds", "300")
    shards = SETTINGS["shards"]
    users: Counter = Counter(expected.shard_of(u, shards) for u in expected.open)
    sessions: Counter = Counter()
    for user, open_sessions in expected.open.items():
        sessions[expected.shard_of(user, shards)] += len(open_sessions)
    assert [s["key"] for s in report["shards"]] == shard_keys(shards)
    assert {s["key"]: s["users"] for s in report["shards"]} == {k: users[k] for k in shard_keys(shards)}
    assert {s["key"]: s["sessions"] for s in report["shards"]} == {k: sessions[k] for k in shard_keys(shards)}
    assert report["totals"]["users"] == len(expected.open)
    assert report["totals"]["sessions"] == sum(len(s) for s in expected.open.values())
    assert report["totals"]["profiles"] == len(expected.closed)
    assert {s["watermark"] for s in report["shards"]} == {format_ms(expected.watermark)}
    assert report["input_partitions"] == {PARTITION: {"newest_event": format_ms(expected.newest)}}
    assert report["rules_versions"] == [{"version": load_rules(DEFAULT_RULES_PATH).version,
                                         "shards": shards}]
    assert report["partitions"] == 2 and report["resume_epoch"] > 1


def test_each_users_sessions_are_those_the_input_implies(
        written: tuple[Path, Expected], capsys: pytest.CaptureFixture) -> None:
    store, expected = written
    gap_ms = SETTINGS["gap_seconds"] * 1000
    for user, open_sessions in sorted(expected.open.items()):
        report = _run_json(capsys, str(store), "--user", user, "--gap-seconds", "300")
        assert report["shard"] == expected.shard_of(user, SETTINGS["shards"])
        got = [(s["start"], s["end"], s["events"], sorted(s["event_ids"])) for s in report["sessions"]]
        want = [(format_ms(s[0]["ts"]), format_ms(s[-1]["ts"]), len(s),
                 sorted(e["event_id"] for e in s)) for s in open_sessions]
        assert got == want, user
        assert report["deadline"] == format_ms(_closes_at(open_sessions[0], gap_ms))
        assert [s["logged_out"] for s in report["sessions"]] == [
            s[-1]["type"] == "logout" for s in open_sessions]
        if expected.closed[user]:
            assert report["profile"]["sessions"] == expected.closed[user]


def test_a_user_with_only_a_profile_and_the_text_output(
        written: tuple[Path, Expected], capsys: pytest.CaptureFixture) -> None:
    store, expected = written
    done = sorted(set(expected.closed) - set(expected.open))[0]
    report = _run_json(capsys, str(store), "--user", done)
    assert report["sessions"] == [] and report["deadline"] is None
    assert report["profile"]["sessions"] == expected.closed[done]

    user = max(expected.open, key=lambda u: len(expected.open[u][0]))
    assert main(["state", str(store), "--user", user, "--gap-seconds", "300"]) == 0
    text = capsys.readouterr().out
    first = expected.open[user][0]
    assert f"user {user}: {expected.shard_of(user, SETTINGS['shards'])}" in text
    assert f"deadline {format_ms(_closes_at(first, 300_000))}" in text
    assert f"open sessions: {len(expected.open[user])}" in text
    assert f"1. {format_ms(first[0]['ts'])} .. {format_ms(first[-1]['ts'])}: {len(first)} events" in text


def test_errors_are_one_line_and_a_nonzero_exit(written: tuple[Path, Expected], tmp_path: Path) -> None:
    store, _ = written
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "part-0.sqlite3").write_text("not a database")
    cases = {
        (str(store), "--user", "nobody"): "user 'nobody' not found",
        (str(tmp_path / "missing"), "--summary"): "no such directory",
        (str(tmp_path / "empty"), "--summary"): "no *.sqlite3 partitions",
        (str(tmp_path / "junk"), "--user", "u1"): "not a Bytewax recovery partition",
        (str(store), "--summary", "--gap-seconds", "0"): "--gap-seconds: must be at least",
    }
    for argv, message in cases.items():
        run = subprocess.run([sys.executable, "-m", "dataflows.cli", "state", *argv], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, (argv, run.stderr)
        assert run.stdout == "" and message in run.stderr, (argv, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_reading_a_stopped_store_leaves_it_untouched(
        written: tuple[Path, Expected], capsys: pytest.CaptureFixture) -> None:
    store, _ = written

    def contents() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in store.iterdir()}

    before = contents()
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    _run_json(capsys, str(store), "--summary")
    assert contents() == before


# -- how Bytewax picks the resume snapshot -------------------------------------------------------


def test_resume_epoch_follows_bytewax() -> None:
    """The cases of bytewax 0.21.1's own tests of `resume_from` (src/recovery.rs)."""
    progress = Progress({1}, {0}, {}, {}, {})
    assert resume_point(progress) == (0, 1)  # resume_from_only_parts
    explicit = Progress({1}, {0}, {1: (3, 11)}, {(1, 0): 13, (1, 1): 12, (1, 2): 13}, {0: 12})
    assert resume_point(explicit) == (1, 12)  # resume_from_all_explict_fronts
    default = Progress({1}, {0}, {1: (3, 11)}, {(1, 0): 13, (1, 2): 13}, {0: 11})
    assert resume_point(default) == (1, 11)  # resume_from_default_fronts: worker 1 says nothing


def test_the_snapshot_at_the_resume_epoch_itself_is_not_resumed_from(tmp_path: Path) -> None:
    """Bytewax loads the newest snapshot *before* the resume epoch; the v7 fixture's input has one
    at the resume epoch too (written as the source aborted)."""
    store = shutil.copytree(FIXTURES / "recovery_v7" / "store", tmp_path / "store")
    view = read_store(store, lambda key, epoch, state: state, step_id=INPUT_STEP)
    newest = 0
    for part in store.glob("*.sqlite3"):
        db = sqlite3.connect(part)
        (epoch,) = db.execute("SELECT MAX(snap_epoch) FROM snaps WHERE step_id = ?", (INPUT_STEP,)).fetchone()
        newest = max(newest, epoch or 0)
        db.close()
    assert newest == view.resume_epoch
    assert [epoch for epoch, _ in view.keys.values()] == [view.resume_epoch - 1]


def test_a_store_bytewax_would_refuse_is_refused(tmp_path: Path) -> None:
    """A partition committed past the resume epoch (e.g. restored from a newer backup than the
    others): Bytewax refuses to resume from it, and so does the command, with its reason."""
    work = shutil.copytree(FIXTURES / "recovery_v7", tmp_path / "v7")
    store = work / "store"
    db = sqlite3.connect(store / "part-0.sqlite3")
    with db:
        db.execute("UPDATE commits SET commit_epoch = 20")
    db.close()
    run = subprocess.run([sys.executable, "-m", "dataflows.cli", "state", str(store), "--summary"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "recovery partitions [1] are too old to resume from epoch 13" in run.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update({f"PROMO_{k.upper()}": str(v) for k, v in FIXTURE_SETTINGS.items()})
    env.update(PROMO_INPUT=str(work / "events.jsonl"), PROMO_OUTPUT=str(work / "notifications.jsonl"),
               PROMO_REJECTS_OUTPUT=str(work / "rejects.jsonl"),
               PROMO_LATE_OUTPUT=str(work / "late.jsonl"), BYTEWAX_RECOVERY_DIRECTORY=str(store),
               BYTEWAX_SNAPSHOT_INTERVAL="1", BYTEWAX_RECOVERY_BACKUP_INTERVAL="0")
    bytewax = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bytewax.returncode != 0
    assert "{PartitionIndex(1)} of 2 are too old to resume from epoch 13" in bytewax.stderr


# -- sessions and deadlines from a document ------------------------------------------------------


def _session(start: int, end: int, logged_out: bool = False) -> dict:
    return {"start": start, "first_event_id": f"e{start}", "end": end, "events": 2,
            "logged_out": logged_out, "type_counts": [0] * 7, "cart": {"p1": 2}, "prices": {},
            "viewed": [], "categories": [], "event_ids": [f"e{start}", f"e{end}"]}


def _event(ts: int, kind: str = "product_view") -> list:
    return [ts, f"e{ts}", kind, "web", "p1", None, None, 1]


@pytest.mark.parametrize("user, spans, closes", [
    # a folded session: its end + gap
    ({"sessions": [_session(0, 100)], "pending": []}, [(0, 100, 2, False)], 1_100),
    # one ended by a logout closes when the watermark passes the logout
    ({"sessions": [_session(0, 100, True)], "pending": [_event(200)]},
     [(0, 100, 2, True), (200, 200, 1, False)], 100),
    # pending events join within the gap (exactly a gap apart too), a longer gap opens another
    ({"sessions": [_session(0, 100)], "pending": [_event(1_100), _event(2_101)]},
     [(0, 1_100, 3, False), (2_101, 2_101, 1, False)], 2_100),
    # a pending logout ends the session it joins
    ({"sessions": [_session(0, 100)], "pending": [_event(600), _event(700, "logout"), _event(800)]},
     [(0, 700, 4, True), (800, 800, 1, False)], 700),
    # pending events only (unsorted in the document): the first one starts the session
    ({"sessions": [], "pending": [_event(900), _event(50)]}, [(50, 900, 2, False)], 1_900),
    ({"sessions": [], "pending": []}, [], None),
])
def test_open_sessions_and_deadline(user: dict, spans: list, closes: int | None) -> None:
    sessions = open_sessions(user, gap_ms=1_000)
    assert [(s["start"], s["end"], s["events"], s["logged_out"]) for s in sessions] == spans
    assert deadline(sessions, gap_ms=1_000) == closes


# -- every snapshot format -----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("recovery_v*")), ids=lambda p: p.name)
def test_stores_of_every_format_are_readable(fixture: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    work = shutil.copytree(fixture, tmp_path / fixture.name)
    gap_ms = FIXTURE_SETTINGS["gap_seconds"] * 1000
    expected = expected_state(work / "store", work / "events.jsonl", gap_ms,
                              FIXTURE_SETTINGS["allowed_lateness_seconds"] * 1000)
    report = _run_json(capsys, str(work / "store"), "--summary", "--gap-seconds", str(gap_ms / 1000))
    assert report["totals"]["shards"] == FIXTURE_SETTINGS["shards"]
    assert report["totals"]["users"] == len(expected.open) > 0
    assert report["totals"]["sessions"] == sum(len(s) for s in expected.open.values())
    assert report["watermark"] == format_ms(expected.watermark)
    for user in sorted(expected.open)[:5]:
        shown = _run_json(capsys, str(work / "store"), "--user", user)
        assert [(s["start"], s["end"], s["events"]) for s in shown["sessions"]] == [
            (format_ms(s[0]["ts"]), format_ms(s[-1]["ts"]), len(s)) for s in expected.open[user]]
        if int(fixture.name.removeprefix("recovery_v")) >= 5:  # earlier formats kept no folded ids
            assert [sorted(s["event_ids"]) for s in shown["sessions"]] == [
                sorted(e["event_id"] for e in s) for s in expected.open[user]]


# -- a store being written by a running service --------------------------------------------------


def test_reads_a_store_while_the_service_writes_it(tmp_path: Path) -> None:
    events, store = tmp_path / "events.jsonl", tmp_path / "store"
    write_jsonl(events, GeneratorConfig(seed=5, users=3_000, events=200_000, rate_per_s=300.0,
                                        max_disorder_ms=1_000))
    store.mkdir()
    init_db_dir(store, 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update(PROMO_INPUT=str(events), PROMO_OUTPUT=str(tmp_path / "notifications.jsonl"),
               PROMO_REJECTS_OUTPUT=str(tmp_path / "rejects.jsonl"),
               PROMO_LATE_OUTPUT=str(tmp_path / "late.jsonl"), PROMO_GAP_SECONDS="30",
               PROMO_BATCH_SIZE="1000", BYTEWAX_RECOVERY_DIRECTORY=str(store),
               BYTEWAX_SNAPSHOT_INTERVAL="0", BYTEWAX_RECOVERY_BACKUP_INTERVAL="0")
    log = (tmp_path / "job.log").open("wb")
    job = subprocess.Popen([sys.executable, "-m", "bytewax.run", "dataflows.promotions"],
                           cwd=ROOT, env=env, stdout=log, stderr=log)

    def state(*argv: str) -> dict:
        run = subprocess.run([sys.executable, "-m", "dataflows.cli", "state", str(store), *argv,
                              "--json"], cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr.decode()
        return orjson.loads(run.stdout)

    try:
        deadline = time.monotonic() + 60
        while read_store(store, lambda *_: None).resume_epoch <= 2:  # a snapshot was written
            assert job.poll() is None, (tmp_path / "job.log").read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        reports = [state("--summary") for _ in range(3)]
        profiled = read_store(store, lambda k, e, s: sorted(shard_state(k, e, s)["profiles"])[:1])
        user = next(found[0] for _, found in profiled.keys.values() if found)
        shown = state("--user", user)
        reports.append(state("--summary"))
        assert job.poll() is None, "the job ended before the reads: make its input larger"
    finally:
        if job.poll() is None:
            os.kill(job.pid, signal.SIGKILL)  # stopped like a crash, mid-write
        job.wait(timeout=60)
        log.close()

    assert all(r["totals"]["shards"] == 64 for r in reports)  # every shard, at every read
    epochs = [r["resume_epoch"] for r in reports]
    assert epochs == sorted(epochs) and epochs[0] < epochs[-1]
    seen = [r["input_partitions"][PARTITION]["newest_event"] for r in reports]
    assert seen == sorted(seen)
    assert shown["user_id"] == user and shown["profile"]["sessions"] >= 1

    # What the crashed store holds (its -wal files still there) is what its input prefix implies.
    assert any(p.name.endswith("-wal") for p in store.iterdir())
    expected = expected_state(store, events, 30_000, 10_000)
    final = state("--summary")
    assert final["totals"]["users"] == len(expected.open) > 0
    assert final["totals"]["sessions"] == sum(len(s) for s in expected.open.values())
    assert final["watermark"] == format_ms(expected.watermark)
