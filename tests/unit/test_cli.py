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


def test_recovery_init_forgets_an_earlier_stores_output_start_offsets(tmp_path: Path) -> None:
    stale = tmp_path / "rec" / "output-start-offsets"
    stale.mkdir(parents=True)
    (stale / "promotions.0").write_text("123")
    assert main(["recovery", "init", str(tmp_path / "rec"), "2"]) == 0
    assert not stale.exists() and len(list((tmp_path / "rec").glob("part-*.sqlite3"))) == 2


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


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one command, whether argparse or the command exits."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_ARGUMENTS = [
    (["replay", "{tmp}/missing.jsonl", "--rules", "{rules}", "--baseline", "{rules}"], "no such file"),
    (["replay", "{tmp}", "--rules", "{rules}", "--baseline", "{rules}"], "is a directory, not a file"),
    (["replay", "{events}", "--rules", "{tmp}/nope.yaml", "--baseline", "{rules}"], "argument --rules: no such file"),
    (["replay", "{events}", "--rules", "{rules}", "--baseline", "{rules}", "--shards", "0"],
     "argument --shards: Input should be greater than or equal to 1"),
    (["replay", "{events}", "--rules", "{rules}", "--baseline", "{rules}", "--gap-seconds", "-5"],
     "argument --gap-seconds: Input should be greater than or equal to 0.001"),
    (["replay", "{events}", "--rules", "{rules}", "--baseline", "{rules}", "--gap-seconds", "nan"],
     "argument --gap-seconds: Input should be a finite number"),
    (["generate", "{tmp}/o.jsonl", "--events", "-5"], "argument --events: Input should be greater than or equal to 0"),
    (["generate", "{tmp}/o.jsonl", "--bad-rate", "2"], "argument --bad-rate: Input should be less than or equal to 1"),
    (["generate", "{tmp}/o.jsonl", "--users", "0"], "argument --users: Input should be greater than or equal to 1"),
    (["generate", "{tmp}/o.jsonl", "--rate", "0"], "argument --rate: Input should be greater than 0"),
    (["generate", "{tmp}/o.jsonl", "--late-every", "-3"], "argument --late-every: Input should be greater than or equal to 0"),
    (["generate", "{tmp}/o.jsonl", "--duplicate-rate", "-0.1"], "argument --duplicate-rate"),
    (["generate", "{tmp}/o.jsonl", "--start", "yesterday"], "argument --start: not a time: 'yesterday'"),
    (["generate", "{tmp}/no/such/dir/o.jsonl", "--events", "1"], "cannot write {tmp}/no/such/dir/o.jsonl"),
    (["generate", "{tmp}", "--events", "1"], "cannot write {tmp}: Is a directory"),
    (["recovery", "init", "{tmp}/rec", "-2"], "argument partitions: Input should be greater than or equal to 1"),
    (["recovery", "init", "{tmp}/rec", "0"], "argument partitions: Input should be greater than or equal to 1"),
    (["recovery", "init", "{events}/rec", "1"], "cannot create {events}/rec"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"")
    names = {"tmp": str(tmp_path), "rules": str(DEFAULT_RULES_PATH), "events": str(events)}
    code, out, err = run_cli([arg.format(**names) for arg in argv], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"promotions {argv[0]}")
    assert message.format(**names) in err
    assert not (tmp_path / "rec").exists()  # nothing half-made


def test_every_option_has_a_help_text(capsys: pytest.CaptureFixture) -> None:
    """Each subcommand's --help describes each of its arguments (argparse leaves them bare)."""
    import argparse

    from dataflows.cli import parser

    def commands(node: argparse.ArgumentParser):
        yield node
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from commands(child)

    bare = [f"{command.prog} {action.dest}" for command in commands(parser())
            for action in command._actions
            if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert bare == []


def test_description_names_what_the_command_does(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    assert "more to come" not in out
    for command in ("generate", "rules", "replay", "recovery", "state"):
        assert command in out


def test_generate_start_sets_the_first_event_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A second batch generated with --start after the first is not behind it (not all late)."""
    from promotion.timefmt import parse_rfc3339_ms

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["generate", str(first), "--events", "200"]) == 0
    assert main(["generate", str(second), "--events", "200", "--start", "2026-01-02T00:00:00Z"]) == 0

    def times(path: Path) -> list[int]:
        out = []
        for line in path.read_bytes().splitlines():
            ts = orjson.loads(line)["ts"]
            out.append(ts if isinstance(ts, int) else parse_rfc3339_ms(ts))
        return out

    assert min(times(first)) >= 1_767_225_600_000  # the documented default, 2026-01-01
    assert max(times(first)) < 1_767_225_600_000 + 86_400_000
    assert min(times(second)) >= 1_767_225_600_000 + 86_400_000
    assert main(["generate", str(second), "--events", "1", "--start", "1767312000000"]) == 0
    assert min(times(second)) >= 1_767_312_000_000


def test_replay_prints_its_samples_as_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    events, candidate = tmp_path / "events.jsonl", tmp_path / "cand.yaml"
    write_jsonl(events, GeneratorConfig(seed=9, users=200, events=4_000, rate_per_s=3.0))
    candidate.write_text(CANDIDATE)
    assert main(["replay", str(events), "--rules", str(candidate), "--baseline", str(DEFAULT_RULES_PATH)]) == 0
    samples = capsys.readouterr().out.split("sessions decided differently:")[1].splitlines()[1:]
    assert samples
    for line in samples:
        before, after = line.split(": ", 1)[1].split(" -> ")
        for side in (orjson.loads(before), orjson.loads(after)):
            assert side is None or set(side) == {"action", "rule", "products"}
    assert main(["replay", str(events), "--rules", str(candidate), "--baseline", str(DEFAULT_RULES_PATH),
                 "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert any(isinstance(s["candidate"], dict) and isinstance(s["candidate"]["products"], list)
               for s in report["samples"])
