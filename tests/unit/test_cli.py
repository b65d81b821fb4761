"""The `promotions` console script: rules check, replay, generate, recovery init."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dataflows.cli import main
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.pipeline import run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules
from promotion.shard import SessionConfig

CANDIDATE = """
version: "cand-1"
rules:
  - {name: stop-after-payment, when: {fact: payments, op: ">=", value: 1}, action: STOP_PROMOTION}
  - {name: big-carts, when: {fact: cart_value, op: ">=", value: 50}, action: START_PROMOTION}
variants:
  - name: viewed
    audience: {percent: 20, salt: s}
    rules: [{name: viewed, when: {fact: product_views, op: ">=", value: 2}, action: START_PROMOTION, promote: viewed}]
"""


def test_rules_check_accepts_and_rejects(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["rules", "check", str(DEFAULT_RULES_PATH)]) == 0
    assert "valid, version 'default-1', 2 rules" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nrules: [{name: a, action: START_PROMOTION, when: {fact: nope, op: '>', value: 1}}]\n")
    assert main(["rules", "check", str(bad)]) == 1
    assert "rules[0](a).when.fact: unknown fact 'nope'" in capsys.readouterr().err


def test_replay_matches_offline_runs_of_both_rule_sets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    events, candidate = tmp_path / "events.jsonl", tmp_path / "cand.yaml"
    write_jsonl(events, GeneratorConfig(seed=9, users=200, events=4_000, rate_per_s=3.0))
    candidate.write_text(CANDIDATE)
    assert main(["replay", str(events), "--rules", str(candidate), "--baseline",
                 str(DEFAULT_RULES_PATH), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    lines = events.read_bytes().splitlines()
    config = SessionConfig(lateness_ms=10_000)
    for side, path in (("baseline", DEFAULT_RULES_PATH), ("candidate", candidate)):
        expected = run_offline(lines, config, load_rules(path)).notifications
        assert report[side]["notifications"] == len(expected)
        assert report[side]["version"] == load_rules(path).version
    assert report["events"] == len(lines) and report["changed_sessions"] > 0
    assert report["candidate"]["by_rule"].get("viewed (viewed)", 0) > 0


def test_generate_and_recovery_init(tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    assert main(["generate", str(out), "--events", "100", "--bad-rate", "0.1"]) == 0
    assert len(out.read_bytes().splitlines()) >= 100
    assert main(["recovery", "init", str(tmp_path / "rec"), "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["part-0.sqlite3", "part-1.sqlite3"]
    assert main(["recovery", "init", str(tmp_path / "rec"), "3"]) == 1


def test_rules_schema_describes_the_format(capsys: pytest.CaptureFixture) -> None:
    assert main(["rules", "schema"]) == 0
    schema = orjson.loads(capsys.readouterr().out)
    assert set(schema["required"]) == {"version", "rules"}
    assert {"Rule", "Comparison", "Audience", "Variant"} <= set(schema["$defs"])


def test_replay_counts_sessions_with_the_same_start(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two sessions of one user may share a start and size (a logout and the next event)."""
    events, candidate = tmp_path / "ties.jsonl", tmp_path / "cand.yaml"
    rows = [("a", "add_to_cart", 1000), ("b", "logout", 1000), ("c", "add_to_cart", 1000),
            ("d", "logout", 1000)]
    events.write_bytes(b"\n".join(orjson.dumps({"event_id": i, "user_id": "u", "type": t, "ts": ts,
                                                "source": "s", "product_id": "p"}) for i, t, ts in rows))
    candidate.write_text("version: c\nrules: [{name: everyone, action: STOP_PROMOTION}]\n")
    assert main(["replay", str(events), "--rules", str(candidate), "--baseline",
                 str(DEFAULT_RULES_PATH), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["sessions"] == 2 and report["changed_sessions"] == 2
