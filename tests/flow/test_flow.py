"""The Bytewax dataflow end to end with Bytewax's testing sources, on 1 and 2 workers."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from dataflows.flow import Wiring, build_flow, wall_clock_ms
from dataflows.settings import load_settings
from dataflows.sources import RawBatch
from promotion.decoding import decode_event
from promotion.events import Event
from promotion.generator import GeneratorConfig, generate
from promotion.notifications import encode_notification
from promotion.pipeline import batched, run_offline
from promotion.rules import DEFAULT_RULES_PATH, load_rules

RULES = load_rules(DEFAULT_RULES_PATH)
PARTITION = "test-0"


def traffic(**overrides: object) -> list[bytes]:
    config = dict(seed=11, users=150, events=3_000, rate_per_s=5.0, max_disorder_ms=3_000,
                  duplicate_rate=0.02, bad_rate=0.01)
    config.update(overrides)
    lines = list(generate(GeneratorConfig(**config)))  # type: ignore[arg-type]
    # A few records held back far beyond the allowed lateness.
    for i in range(100, len(lines) - 600, 700):
        lines.insert(i + 500, lines.pop(i))
    return lines


def raw_batches(lines: list[bytes], size: int = 250) -> list[RawBatch]:
    out, offset = [], 0
    for chunk in batched(lines, size):
        out.append(RawBatch(PARTITION, list(range(offset, offset + len(chunk))), chunk))
        offset += len(chunk)
    return out


class Outputs:
    def __init__(self) -> None:
        self.notifications: list = []
        self.rejects: list = []
        self.late: list = []

    def lines(self, name: str) -> list[bytes]:
        return [record.value for _key, records in getattr(self, name) for record in records]

    def decoded(self, name: str) -> list[dict]:
        return [orjson.loads(line) for line in self.lines(name)]


def execute(items: list, workers: int = 1, recovery: RecoveryConfig | None = None,
            outputs: Outputs | None = None, clock=wall_clock_ms, live_rules: bool = False,
            **settings: object) -> Outputs:
    """Run the flow over testing items; `live_rules` decides with the PROMO_RULES file (watched)."""
    outputs = outputs or Outputs()
    options = dict(allowed_lateness_seconds=5, shards=8)
    options.update(settings)
    wiring = Wiring(
        source=TestingSource(items),
        partitions=[PARTITION],
        notifications=TestingSink(outputs.notifications),
        rejects=TestingSink(outputs.rejects),
        late=TestingSink(outputs.late),
    )
    flow = build_flow(load_settings(**options), wiring, None if live_rules else RULES, clock)
    kwargs = dict(epoch_interval=timedelta(milliseconds=50), recovery_config=recovery)
    if workers == 1:
        run_main(flow, **kwargs)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers, **kwargs)
    return outputs


def offline(lines: list[bytes], lateness_s: float = 5, gap_s: float = 300):
    settings = load_settings(allowed_lateness_seconds=lateness_s, gap_seconds=gap_s)
    return run_offline(lines, settings.session_config(), RULES, batch_size=250, partition=PARTITION)


@pytest.mark.parametrize("engine", ["kernel", "python"])
@pytest.mark.parametrize("workers", [1, 2])
def test_flow_equals_the_offline_core(workers: int, engine: str) -> None:
    lines = traffic()
    expected = offline(lines)
    out = execute(raw_batches(lines), workers, engine=engine)
    assert Counter(out.lines("notifications")) == Counter(
        encode_notification(n) for n in expected.notifications
    )
    assert len(expected.notifications) > 100
    late = out.decoded("late")
    assert sorted(x["event"]["event_id"] for x in late) == sorted(x.event[1] for x in expected.late)
    assert len(late) >= 3 and all(x["reason"] == "late" and x["behind_ms"] > 0 for x in late)
    rejects = out.decoded("rejects")
    assert Counter(r["reason"] for r in rejects) == Counter(
        r.rejection.reason for r in expected.rejected
    )
    bad = [i for i, line in enumerate(lines) if not isinstance(decode_event(line), Event)]
    assert sorted(r["offset"] for r in rejects) == bad
    assert all(r["partition"] == PARTITION for r in rejects)


@pytest.mark.parametrize("workers", [1, 2])
def test_both_engines_write_the_same_bytes(workers: int) -> None:
    lines = traffic(seed=12)
    kernel = execute(raw_batches(lines, 97), workers, engine="kernel")
    python = execute(raw_batches(lines, 97), workers, engine="python")
    for name in ("notifications", "late", "rejects"):
        assert sorted(kernel.lines(name)) == sorted(python.lines(name)), name
    assert len(kernel.lines("notifications")) > 100 and kernel.lines("late")


def _shift(lines: list[bytes], delta_ms: int) -> list[bytes]:
    out = []
    for line in lines:
        try:
            obj = orjson.loads(line)
            obj["ts"] = (obj["ts"] if isinstance(obj["ts"], int) else None) + delta_ms
        except Exception:  # noqa: BLE001 - bad records stay as they are
            out.append(line)
            continue
        out.append(orjson.dumps(obj))
    return out


def _shape(outputs: Outputs) -> Counter:
    return Counter(
        (n["user_id"], n["action"], tuple(n["products"]), n["session"]["events"],
         n["session"]["close_reason"])
        for n in outputs.decoded("notifications")
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_backlog_replay_equals_live_like_timestamps(workers: int) -> None:
    """Event time years behind the wall clock gives the same sessions as event time near it."""
    lines = traffic(ts_format="epoch_ms", events=2_000)
    first_ts = orjson.loads(lines[0])["ts"]
    backlog = _shift(lines, -(first_ts - 1_577_836_800_000))  # starts 2020-01-01
    live = _shift(lines, wall_clock_ms() - 600_000 - first_ts)  # ends around now
    replayed = execute(raw_batches(backlog), workers)
    live_like = execute(raw_batches(live), workers)
    assert _shape(replayed) == _shape(live_like)
    assert sum(_shape(replayed).values()) > 50


def _session_lines(user: str, start_ms: int) -> list[bytes]:
    return [
        orjson.dumps({"event_id": f"{user}-1", "user_id": user, "type": "login", "ts": start_ms, "source": "auth"}),
        orjson.dumps({"event_id": f"{user}-2", "user_id": user, "type": "add_to_cart",
                      "ts": start_ms + 100, "source": "cart", "product_id": "p9"}),
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_idle_input_closes_sessions_by_wall_clock(workers: int) -> None:
    """Input pauses: the wall-clock fallback closes the session by gap before the input ends."""
    start = wall_clock_ms()
    items = [RawBatch(PARTITION, [0, 1], _session_lines("idle", start)),
             TestingSource.PAUSE(timedelta(seconds=2)),
             RawBatch(PARTITION, [2, 3], _session_lines("other", start + 600_000))]
    settings = dict(gap_seconds=0.5, allowed_lateness_seconds=0, idle_timeout_seconds=0.2,
                    tick_seconds=0.05)
    began = time.monotonic()
    out = execute(items, workers, **settings)
    assert time.monotonic() - began < 30
    reasons = {n["user_id"]: n["session"]["close_reason"] for n in out.decoded("notifications")}
    assert reasons == {"idle": "gap", "other": "eof"}


@pytest.mark.parametrize("workers", [1, 2])
def test_without_idle_fallback_the_same_session_waits_for_eof(workers: int) -> None:
    start = wall_clock_ms()
    items = [RawBatch(PARTITION, [0, 1], _session_lines("idle", start)),
             TestingSource.PAUSE(timedelta(seconds=1))]
    out = execute(items, workers, gap_seconds=0.5, allowed_lateness_seconds=0,
                  idle_timeout_seconds=60, tick_seconds=0.05)
    assert [n["session"]["close_reason"] for n in out.decoded("notifications")] == ["eof"]


def test_resume_from_recovery_store_loses_nothing(tmp_path: Path) -> None:
    """Abort mid-stream, resume from Bytewax's SQLite store: every notification arrives."""
    lines = traffic(events=2_000)
    batches = raw_batches(lines, 100)
    items: list = batches[:8] + [TestingSource.ABORT()] + batches[8:]
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    out = Outputs()
    execute(items, 1, recovery, out)  # stops abruptly at ABORT, no EOF
    before = len(out.lines("notifications"))
    execute(items, 1, recovery, out)
    expected = {encode_notification(n) for n in offline(lines).notifications}
    assert set(out.lines("notifications")) == expected
    assert 0 < before < len(expected)


@pytest.mark.parametrize("workers", [1, 2])
def test_directory_input_is_one_partition_per_file(tmp_path: Path, workers: int) -> None:
    """One stream split over files (one partition each): same notifications as the offline core."""
    from dataflows.flow import default_wiring

    lines = list(generate(GeneratorConfig(seed=12, users=150, events=3_000, rate_per_s=5.0,
                                          max_disorder_ms=3_000, duplicate_rate=0.02,
                                          bad_rate=0.01)))
    (tmp_path / "in").mkdir()
    for i in range(3):  # round-robin keeps each file's disorder within the stream's bound
        (tmp_path / "in" / f"part-{i}.jsonl").write_bytes(b"\n".join(lines[i::3]) + b"\n")
    settings = load_settings(input=tmp_path / "in", output=str(tmp_path / "out.jsonl"),
                             rejects_output=str(tmp_path / "rej.jsonl"),
                             late_output=str(tmp_path / "late.jsonl"), shards=8,
                             allowed_lateness_seconds=5, idle_timeout_seconds=600)
    wiring = default_wiring(settings)
    assert list(wiring.partitions) == ["file:part-0.jsonl", "file:part-1.jsonl", "file:part-2.jsonl"]
    flow = build_flow(settings, wiring, RULES)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    written = (tmp_path / "out.jsonl").read_bytes().splitlines()
    expected = offline(lines)
    assert expected.late == [] and len(expected.notifications) > 100
    assert sorted(orjson.loads(line)["notification_id"] for line in written) == sorted(
        n["notification_id"] for n in expected.notifications)
    assert not (tmp_path / "late.jsonl").exists() or (tmp_path / "late.jsonl").read_bytes() == b""
    assert (tmp_path / "rej.jsonl").read_bytes().count(b"\n") == len(expected.rejected)


def test_outputs_are_emptied_even_when_nothing_is_written(tmp_path: Path) -> None:
    """A fresh run leaves no previous run's records behind, and creates every output file."""
    from dataflows.flow import default_wiring

    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"event_id":"e1","user_id":"u","type":"login","ts":1,"source":"a"}\n')
    stale = b'{"stale":"from a previous run"}\n'
    (tmp_path / "out.jsonl").write_bytes(stale)
    (tmp_path / "late.jsonl").write_bytes(stale)
    settings = load_settings(input=events, output=str(tmp_path / "out.jsonl"),
                             rejects_output=str(tmp_path / "rej.jsonl"),
                             late_output=str(tmp_path / "late.jsonl"))
    run_main(build_flow(settings, default_wiring(settings), RULES))
    for name in ("out.jsonl", "rej.jsonl", "late.jsonl"):
        assert (tmp_path / name).read_bytes() == b""


def test_blank_lines_in_a_file_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    """Nothing in the input is skipped silently: a blank line is a record that is not JSON."""
    from dataflows.flow import default_wiring

    event = b'{"event_id":"e1","user_id":"u","type":"login","ts":1,"source":"a"}'
    events = tmp_path / "events.jsonl"
    events.write_bytes(event + b"\n\n   \r\n" + event.replace(b"e1", b"e2") + b"\n\x0b\n")
    settings = load_settings(input=events, output=str(tmp_path / "out.jsonl"),
                             rejects_output=str(tmp_path / "rej.jsonl"),
                             late_output=str(tmp_path / "late.jsonl"))
    run_main(build_flow(settings, default_wiring(settings), RULES))
    rejects = [orjson.loads(line) for line in (tmp_path / "rej.jsonl").read_bytes().splitlines()]
    assert [(r["offset"], r["reason"], r["raw"]) for r in rejects] == [
        (2, "not_json", ""), (3, "not_json", "   "), (5, "not_json", "\x0b")]
