"""Settings: environment variables with the PROMO_ prefix, one clear message on error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dataflows.settings import DEFAULT_SAMPLE, SettingsError, load_settings
from promotion.rules import DEFAULT_RULES_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("PROMO_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.input == DEFAULT_SAMPLE and DEFAULT_SAMPLE.is_file()
    assert settings.rules == DEFAULT_RULES_PATH
    assert (settings.output, settings.gap_seconds) == ("-", 300.0)
    assert settings.session_config().gap_ms == 300_000


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMO_GAP_SECONDS", "60")
    monkeypatch.setenv("PROMO_ALLOWED_LATENESS_SECONDS", "2.5")
    monkeypatch.setenv("PROMO_OUTPUT", str(tmp_path / "out.jsonl"))
    settings = load_settings()
    config = settings.session_config()
    assert (config.gap_ms, config.lateness_ms) == (60_000, 2_500)
    assert settings.output == str(tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("PROMO_GAP_SECONDS", "0", "PROMO_GAP_SECONDS: Input should be greater than or equal to 0.001"),
        ("PROMO_GAP_SECONDS", "five", "PROMO_GAP_SECONDS: Input should be a valid number"),
        ("PROMO_ALLOWED_LATENESS_SECONDS", "-1", "PROMO_ALLOWED_LATENESS_SECONDS"),
        ("PROMO_INPUT", "/nowhere/events.jsonl", "PROMO_INPUT: no such file"),
        ("PROMO_OUTPUT", "/nowhere/out.jsonl", "PROMO_OUTPUT: directory"),
        ("PROMO_SHARDS", "0", "PROMO_SHARDS"),
        ("PROMO_GAP_SECONDS", "0.0001", "PROMO_GAP_SECONDS: Input should be greater than or equal to 0.001"),
        ("PROMO_IDLE_TIMEOUT_SECONDS", "0.0001", "PROMO_IDLE_TIMEOUT_SECONDS"),
        ("PROMO_GAP_SECONDS", "inf", "PROMO_GAP_SECONDS: Input should be a finite number"),
        ("PROMO_ALLOWED_LATENESS_SECONDS", "inf", "PROMO_ALLOWED_LATENESS_SECONDS"),
        ("PROMO_OUTPUT", "/tmp", "PROMO_OUTPUT: '/tmp' is a directory"),
        ("PROMO_GAP_SECONDS", "1e12", "PROMO_GAP_SECONDS: Input should be less than or equal to 315360000"),
        ("PROMO_ALLOWED_LATENESS_SECONDS", "4e8", "PROMO_ALLOWED_LATENESS_SECONDS"),
        ("PROMO_IDLE_TIMEOUT_SECONDS", "4e8", "PROMO_IDLE_TIMEOUT_SECONDS"),
        ("PROMO_MAX_FUTURE_SECONDS", "-1", "PROMO_MAX_FUTURE_SECONDS: Input should be greater than or equal to 0"),
        ("PROMO_MAX_FUTURE_SECONDS", "0.0001", "PROMO_MAX_FUTURE_SECONDS: must be 0 (off) or at least 0.001"),
        ("PROMO_MAX_FUTURE_SECONDS", "inf", "PROMO_MAX_FUTURE_SECONDS: Input should be a finite number"),
        ("PROMO_MAX_FUTURE_SECONDS", "4e8", "PROMO_MAX_FUTURE_SECONDS: Input should be less than or equal to 315360000"),
    ],
)
def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                  message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert message in str(error.value.code)


def test_future_guard_defaults_to_an_hour_and_0_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMO_MAX_FUTURE_SECONDS", raising=False)
    assert load_settings().max_future_ms == 3_600_000
    monkeypatch.setenv("PROMO_MAX_FUTURE_SECONDS", "0")
    assert load_settings().max_future_ms == 0
    monkeypatch.setenv("PROMO_MAX_FUTURE_SECONDS", "1.5")
    assert load_settings().max_future_ms == 1_500


def test_bad_configuration_fails_fast_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: x\nrules: [{name: a, action: SHOUT}]\n")
    env = {"PATH": "/usr/bin:/bin", "PROMO_RULES": str(rules), "PROMO_GAP_SECONDS": "-3"}
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "session-promotions: invalid configuration: PROMO_GAP_SECONDS: Input should be greater "
        "than or equal to 0.001 (got '-3')"
    ]
    env["PROMO_GAP_SECONDS"] = "3"
    run = subprocess.run([sys.executable, "-m", "bytewax.run", "dataflows.promotions"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "PROMO_RULES" in run.stderr and "rules[0](a).action" in run.stderr


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMO_KAFKA_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("PROMO_KAFKA_SSL_KEY_PASSWORD", "other-secret")
    settings = load_settings()
    assert "hunter2" not in repr(settings) and "other-secret" not in str(settings.model_dump())
    assert settings.kafka_common()["sasl.password"] == "hunter2-secret"
    monkeypatch.setenv("PROMO_KAFKA_SECURITY_PROTOCOL", "SASL_WHATEVER")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "PROMO_KAFKA_SECURITY_PROTOCOL" in str(error.value.code)
    assert "hunter2" not in str(error.value.code)


def test_outputs_must_be_distinct_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMO_OUTPUT", str(tmp_path / "all.jsonl"))
    monkeypatch.setenv("PROMO_LATE_OUTPUT", str(tmp_path / "." / "all.jsonl"))
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "PROMO_LATE_OUTPUT and PROMO_OUTPUT name the same file" in str(error.value.code)
    monkeypatch.setenv("PROMO_LATE_OUTPUT", str(DEFAULT_SAMPLE))
    with pytest.raises(SettingsError, match="PROMO_INPUT"):
        load_settings()
