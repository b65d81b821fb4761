"""`promotions explain` agrees with the streaming job: a real `bytewax.run` on a generated file,
then several users explained from the same file with the same settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from dataflows.cli import main
from promotion.decoding import decode_many
from promotion.explanation import IN_SESSION, LATE, REJECTED, REPEAT

ROOT = Path(__file__).resolve().parents[2]
#: Not the defaults, so that explain provably reads the job's PROMO_* settings.
SETTINGS = {"PROMO_SHARDS": "16", "PROMO_GAP_SECONDS": "120", "PROMO_ALLOWED_LATENESS_SECONDS": "3",
            "PROMO_BATCH_SIZE": "500", "PROMO_ENGINE": "kernel"}
RULES = """\
version: explain-test
rules:
  - name: stop-after-payment
    action: STOP_PROMOTION
    when: {fact: payments, op: ">=", value: 1}
  - name: big-cart
    priority: 5
    action: START_PROMOTION
    when: {all: [{fact: cart_value, op: ">", value: 150}, {fact: close_reason, op: in, value: [gap, eof]}]}
  - name: abandoned-cart
    action: START_PROMOTION
    when: {fact: cart_items, op: ">", value: 0}
  - name: returning-viewer
    action: START_PROMOTION
    promote: viewed
    when: {any: [{fact: profile_sessions, op: ">=", value: 2}, {fact: product_views, op: ">=", value: 6}]}
variants:
  - name: quiet
    audience: {percent: 20, salt: explain}
    rules:
      - {name: quiet-stop, action: STOP_PROMOTION, when: {fact: payments, op: ">=", value: 1}}
      - {name: quiet-none, action: NONE}
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("explain")
    events, rules = work / "events.jsonl", work / "rules.yaml"
    rules.write_text(RULES)
    assert main(["generate", str(events), "--events", "12000", "--users", "200", "--seed", "21",
                 "--rate", "4", "--disorder-ms", "3000", "--duplicate-rate", "0.02",
                 "--bad-rate", "0.01", "--late-every", "300", "--late-hold", "400"]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYTEWAX_", "PROMO_"))}
    env.update(SETTINGS, PROMO_INPUT=str(events), PROMO_RULES=str(rules),
               PROMO_OUTPUT=str(work / "notifications.jsonl"),
               PROMO_REJECTS_OUTPUT=str(work / "rejects.jsonl"),
               PROMO_LATE_OUTPUT=str(work / "late.jsonl"))
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    notified: dict[str, list[dict]] = defaultdict(list)
    for line in (work / "notifications.jsonl").read_bytes().splitlines():
        notification = orjson.loads(line)
        notified[notification["user_id"]].append(notification)
    late: dict[str, set] = defaultdict(set)
    for line in (work / "late.jsonl").read_bytes().splitlines():
        event = orjson.loads(line)["event"]
        late[event["user_id"]].add((event["event_id"], event["ts"]))
    return {"events": events, "rules": rules, "notified": notified, "late": late}


@pytest.fixture()
def job_env(job: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    for name in [n for n in os.environ if n.startswith("PROMO_")]:
        monkeypatch.delenv(name)
    for name, value in {**SETTINGS, "PROMO_RULES": str(job["rules"])}.items():
        monkeypatch.setenv(name, value)
    return job


def _explain(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["explain", *argv, "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def _chosen_users(job: dict) -> list[str]:
    """Users of every decision the job made (each rule, the variant), some late ones, and users
    with sessions but no notification."""
    by_rule: dict[str, list[str]] = defaultdict(list)
    for user, notifications in sorted(job["notified"].items()):
        for n in notifications:
            by_rule[n["rule"]].append(user)
    chosen = [u for users in by_rule.values() for u in (users[0], users[-1])] + sorted(job["late"])[:3]
    valid, _ = decode_many(job["events"].read_bytes().splitlines())
    chosen += sorted({e[2] for e in valid} - set(job["notified"]))[:2]
    return sorted(set(chosen))


def test_explained_decisions_and_ids_equal_the_jobs(job_env: dict, capsys: pytest.CaptureFixture) -> None:
    job = job_env
    users = _chosen_users(job)
    rules_seen = {n["rule"] for ns in job["notified"].values() for n in ns}
    assert {"stop-after-payment", "big-cart", "abandoned-cart", "quiet-stop"} <= rules_seen
    assert len(users) >= 8
    fates_seen: set[str] = set()
    undecided = 0
    for user in users:
        report = _explain(capsys, str(job["events"]), "--user", user)
        assert report["user_id"] == user and report["settings"]["shards"] == 16
        explained = [s["notification"] for s in report["sessions"] if s["notification"]]
        assert explained == job["notified"].get(user, []), user  # same decisions, ids, order
        for session in report["sessions"]:
            assert len(session["events"]) == orjson.loads(orjson.dumps(session["facts"]))["events"]
            ids = [e["event"]["event_id"] for e in session["events"]]
            assert session["first_event_id"] == ids[0] and len(set(ids)) == len(ids)
            outcomes = [r["outcome"] for r in session["rules"]]
            decided = session["decision"]
            undecided += decided is None
            if decided is not None:
                assert session["rules"][outcomes.index("matched")]["rule"] == decided["rule"]
                assert decided["variant"] == session["variant"]
        late = {(a["event"]["event_id"], a["event"]["ts"]) for a in report["not_in_a_session"]
                if a["fate"] == LATE}
        assert late == job["late"].get(user, set()), user
        fates_seen |= {a["fate"] for a in report["not_in_a_session"]}
        fates_seen |= {a["fate"] for s in report["sessions"] for a in s["events"]}
    assert {IN_SESSION, LATE, REPEAT} <= fates_seen, fates_seen
    assert undecided > 0  # sessions the rules left alone are explained too


def test_a_notification_id_alone_finds_its_session(job_env: dict, capsys: pytest.CaptureFixture) -> None:
    job = job_env
    user, notifications = sorted(job["notified"].items())[-1]
    wanted = notifications[-1]
    report = _explain(capsys, str(job["events"]), "--notification-id", wanted["notification_id"])
    assert report["user_id"] == user
    assert [s["notification"] for s in report["sessions"]] == [wanted]


def test_text_output_names_rules_values_and_the_id(job_env: dict, capsys: pytest.CaptureFixture) -> None:
    job = job_env
    user, notifications = next((u, ns) for u, ns in sorted(job["notified"].items())
                               if any(n["rule"] == "big-cart" for n in ns))
    assert main(["explain", str(job["events"]), "--user", user]) == 0
    text = capsys.readouterr().out
    big = next(n for n in notifications if n["rule"] == "big-cart")
    assert f"user {user}: " in text and "16 shards, gap 120 s, lateness 3 s" in text
    assert "1. big-cart (START_PROMOTION, priority 5): matched" in text
    assert "cart_value > 150: cart_value is " in text
    assert f"notification {big['notification_id']}" in text
    assert "variant: default (quiet: bucket " in text


def test_a_rejected_record_of_the_user_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PROMO_")]:
        monkeypatch.delenv(name)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id":"a","user_id":"u1","type":"add_to_cart","ts":1767225600000,"source":"web","product_id":"p1"}\n'
        '{"event_id":"b","user_id":"u1","type":"teleport","ts":1767225601000,"source":"web"}\n'
        '{"event_id":"a","user_id":"u1","type":"add_to_cart","ts":1767225602000,"source":"web","product_id":"p1"}\n')
    report = _explain(capsys, str(events), "--user", "u1")
    (session,) = report["sessions"]
    assert [a["line"] for a in session["events"]] == [1]
    assert [(a["line"], a["fate"]) for a in report["not_in_a_session"]] == [(2, REJECTED), (3, REPEAT)]
    assert session["notification"]["rule"] == "promote-abandoned-cart"


@pytest.mark.parametrize("argv, message", [
    (["--user", "u1", "MISSING"], "PROMO_INPUT: no such file"),
    (["EVENTS"], "give --user or --notification-id"),
    (["EVENTS", "--notification-id", "nope"], "no notification nope in"),
    (["EVENTS", "--user", "u1", "--notification-id", "nope"], "no notification nope for user 'u1'"),
    (["EVENTS", "--user", "u1", "--rules", "MISSING"], "PROMO_RULES: no such file"),
])
def test_errors_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id":"a","user_id":"u1","type":"login","ts":1767225600000,"source":"web"}\n')
    argv = [str(events) if a == "EVENTS" else str(tmp_path / a) if a == "MISSING" else a for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMO_")}
    run = subprocess.run([sys.executable, "-m", "dataflows.cli", "explain", *argv], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == "", run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
