"""Issue 14, fault 1: one event dated 2030 in the middle of a file must not poison its partition."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from bytewax.testing import run_main

from dataflows.flow import build_flow
from dataflows.settings import load_settings
from promotion.generator import GeneratorConfig, generate
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules

RULES = load_rules(DEFAULT_RULES_PATH)
SKEWED = orjson.dumps({"event_id": "skewed-1", "user_id": "skewed", "type": "login",
                       "ts": "2030-01-01T00:00:00.000Z", "source": "auth"})


def _events(tmp_path: Path) -> Path:
    lines = list(generate(GeneratorConfig(seed=14, users=2_000, events=20_000)))
    lines.insert(len(lines) // 2, SKEWED)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _run(tmp_path: Path, engine: str, max_future_seconds: float) -> dict[str, list[dict]]:
    out = {name: tmp_path / f"{name}-{engine}-{max_future_seconds}.jsonl"
           for name in ("notifications", "rejects", "late")}
    settings = load_settings(input=_events(tmp_path), output=str(out["notifications"]),
                             rejects_output=str(out["rejects"]), late_output=str(out["late"]),
                             engine=engine, max_future_seconds=max_future_seconds)
    run_main(build_flow(settings, rules=RULES))
    return {name: [orjson.loads(line) for line in path.read_bytes().splitlines()]
            for name, path in out.items()}


@pytest.mark.parametrize("engine", ["kernel", "python"])
def test_a_timestamp_years_ahead_is_dead_lettered_and_loses_nothing(tmp_path: Path,
                                                                     engine: str) -> None:
    unguarded = _run(tmp_path, engine, 0)  # the run: everything after it is late
    guarded = _run(tmp_path, engine, 3600)
    assert len(unguarded["late"]) > 9_000
    assert len(unguarded["notifications"]) < 0.6 * len(guarded["notifications"])
    (future,) = [r for r in guarded["rejects"] if r["reason"] == "future_timestamp"]
    assert future["raw"] == SKEWED.decode() and future["field"] == "ts"
    assert "2030-01-01T00:00:00.000Z is more than 3600 s ahead" in future["detail"]
    assert len(guarded["late"]) < 50  # only the generator's own late events
    # Every notification of the input without the skewed line, as the offline core makes them.
    lines = [line for line in _events(tmp_path).read_bytes().splitlines() if line != SKEWED]
    expected = run_offline(lines, load_settings().session_config(), RULES)
    assert sorted(n["notification_id"] for n in guarded["notifications"]) == sorted(
        n["notification_id"] for n in expected.notifications)
