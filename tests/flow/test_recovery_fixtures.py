"""Resume from recovery stores written by earlier snapshot formats (kept under tests/fixtures).

Each `recovery_v<N>` directory holds an input file, a store written midway through it, and the
outputs written up to the abort. Resuming with today's code must finish the job with every output
exactly once (file sinks truncate to their snapshot), so every format change needs a migration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SNAPSHOT_VERSION, SessionConfig
from tests.fixtures.make_recovery_fixture import SETTINGS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = FIXTURES.parents[1]
STORES = sorted(FIXTURES.glob("recovery_v*"))


def test_a_fixture_exists_for_the_current_format() -> None:
    assert FIXTURES / f"recovery_v{SNAPSHOT_VERSION}" in STORES


@pytest.mark.parametrize("engine", ["kernel", "python"])
@pytest.mark.parametrize("fixture", STORES, ids=lambda p: p.name)
def test_resume_from_stored_format(fixture: Path, engine: str, tmp_path: Path) -> None:
    work = tmp_path / fixture.name
    shutil.copytree(fixture, work)
    before = (work / "notifications.jsonl").read_bytes().count(b"\n")
    env = {**os.environ, "PROMO_INPUT": str(work / "events.jsonl"),
           "PROMO_OUTPUT": str(work / "notifications.jsonl"),
           "PROMO_REJECTS_OUTPUT": str(work / "rejects.jsonl"),
           "PROMO_LATE_OUTPUT": str(work / "late.jsonl"),
           "BYTEWAX_RECOVERY_DIRECTORY": str(work / "store"),
           "BYTEWAX_SNAPSHOT_INTERVAL": "1", "BYTEWAX_RECOVERY_BACKUP_INTERVAL": "0",
           "PROMO_ENGINE": engine}
    env.update({f"PROMO_{k.upper()}": str(v) for k, v in SETTINGS.items()})
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]

    lines = (work / "events.jsonl").read_bytes().splitlines()
    config = SessionConfig(gap_ms=SETTINGS["gap_seconds"] * 1000,
                           lateness_ms=SETTINGS["allowed_lateness_seconds"] * 1000)
    expected = run_offline(lines, config, load_rules(DEFAULT_RULES_PATH),
                           shards=SETTINGS["shards"], batch_size=SETTINGS["batch_size"],
                           partition="file:events.jsonl")
    written = [orjson.loads(line) for line in (work / "notifications.jsonl").read_bytes().splitlines()]
    # Exactly once, by the id consumers deduplicate on (fields may be added across releases).
    got = Counter(n["notification_id"] for n in written)
    assert got == Counter(n["notification_id"] for n in expected.notifications)
    assert 0 < before < sum(got.values())  # the fixture really stopped midway
    assert (work / "rejects.jsonl").read_bytes().count(b"\n") == len(expected.rejected)
