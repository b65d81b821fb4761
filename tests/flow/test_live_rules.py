"""Rules change under a running dataflow: no restart, no session lost, every worker switches."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from bytewax.testing import TestingSource
from prometheus_client import REGISTRY

from dataflows.flow import build_flow, default_wiring, wall_clock_ms
from dataflows.settings import load_settings
from dataflows.sources import RawBatch
from promotion.generator import GeneratorConfig, write_jsonl
from promotion.replay import replay
from promotion.rules import load_rules
from tests.flow.test_flow import PARTITION, execute

RULES = """
version: "{version}"
rules:
  - {{name: promote-{version}, when: {{fact: cart_items, op: ">", value: 0}}, action: START_PROMOTION}}
"""


def sessions(prefix: str, start: int) -> RawBatch:
    """Five users add to cart and log out; a sixth event moves the watermark past the logouts."""
    lines = [orjson.dumps({"event_id": f"{prefix}{i}-a", "user_id": f"{prefix}{i}", "type": "add_to_cart",
                           "ts": start + i, "source": "cart", "product_id": "p1"}) for i in range(5)]
    lines += [orjson.dumps({"event_id": f"{prefix}{i}-z", "user_id": f"{prefix}{i}", "type": "logout",
                            "ts": start + 10 + i, "source": "auth"}) for i in range(5)]
    lines.append(orjson.dumps({"event_id": f"{prefix}-clock", "user_id": "clock", "type": "login",
                               "ts": start + 100, "source": "auth"}))
    return RawBatch(PARTITION, list(range(len(lines))), lines)


def rejected_updates() -> float:
    return REGISTRY.get_sample_value("promotions_rules_updates_total", {"result": "rejected"}) or 0.0


def run_with_change(tmp_path: Path, workers: int, new_content: str) -> dict[str, str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(version="A"))
    start = wall_clock_ms()
    items = [sessions("a", start), TestingSource.PAUSE(timedelta(seconds=1.5)), sessions("b", start + 1_000)]

    def change() -> None:
        time.sleep(0.5)
        rules.write_text(new_content)

    writer = threading.Thread(target=change)
    writer.start()
    out = execute(items, workers, rules=rules, rules_poll_seconds=0.05, gap_seconds=60,
                  allowed_lateness_seconds=0, tick_seconds=0.05, live_rules=True)
    writer.join()
    decoded = out.decoded("notifications")
    assert len({n["notification_id"] for n in decoded}) == len(decoded) == 10  # none lost or doubled
    return {n["user_id"]: n["rules_version"] for n in decoded}


@pytest.mark.parametrize("workers", [1, 2])
def test_new_rules_apply_without_restart(tmp_path: Path, workers: int) -> None:
    versions = run_with_change(tmp_path, workers, RULES.format(version="B"))
    assert versions == {**{f"a{i}": "A" for i in range(5)}, **{f"b{i}": "B" for i in range(5)}}


@pytest.mark.parametrize("workers", [1, 2])
def test_invalid_update_keeps_the_previous_rules(tmp_path: Path, workers: int) -> None:
    before = rejected_updates()
    versions = run_with_change(tmp_path, workers, "version: B\nrules: [{name: x, action: SHOUT}]\n")
    assert set(versions.values()) == {"A"}
    assert rejected_updates() > before


def test_replay_equals_the_streaming_job(tmp_path: Path) -> None:
    events, rules_path, out = tmp_path / "events.jsonl", tmp_path / "rules.yaml", tmp_path / "out.jsonl"
    write_jsonl(events, GeneratorConfig(seed=4, users=150, events=3_000, rate_per_s=3.0,
                                        max_disorder_ms=2_000, bad_rate=0.01))
    rules_path.write_text(RULES.format(version="R") + """variants:
  - {name: half, audience: {percent: 50}, rules: [{name: viewed, when: {fact: product_views, op: ">", value: 0}, action: START_PROMOTION, promote: viewed}]}
""")
    settings = load_settings(input=events, output=str(out), rejects_output=str(tmp_path / "r.jsonl"),
                             late_output=str(tmp_path / "l.jsonl"), rules=rules_path, shards=8)
    from bytewax.testing import run_main

    run_main(build_flow(settings, default_wiring(settings)))
    streamed = sorted(out.read_bytes().splitlines())
    report = replay(events.read_bytes().splitlines(), settings.session_config(),
                    load_rules(rules_path), load_rules(rules_path), shards=8)
    assert streamed == sorted(orjson.dumps(n) for n in report.candidate.notifications)
    assert {orjson.loads(line)["variant"] for line in streamed} == {"default", "half"}
