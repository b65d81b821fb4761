"""Settings from `PROMO_*` environment variables, validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from promotion.rules import DEFAULT_RULES_PATH, CompiledRules, RulesError, load_rules
from promotion.shard import SessionConfig

DEFAULT_SAMPLE = Path(__file__).with_name("data") / "sample.jsonl"
STREAMS = ("-", "stdout", "stderr")


class SettingsError(SystemExit):
    """A configuration problem: exits the process with one clear message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"session-promotions: invalid configuration: {message}")


class Settings(BaseSettings):
    """Every knob of the service; the environment variable is `PROMO_` + the field name."""

    model_config = SettingsConfigDict(env_prefix="PROMO_", extra="ignore", frozen=True)

    input: Path = Field(DEFAULT_SAMPLE, description="JSON-lines file of events")
    output: str = Field("-", description="notifications: file path, or - for stdout")
    rejects_output: str = Field("stderr", description="rejected records: path, -, or stderr")
    late_output: str = Field("stderr", description="late events: path, -, or stderr")
    gap_seconds: Annotated[float, Field(gt=0)] = 300.0
    allowed_lateness_seconds: Annotated[float, Field(ge=0)] = 10.0
    idle_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    tick_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    rules: Path = DEFAULT_RULES_PATH
    shards: Annotated[int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 2_000
    max_event_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 65_536

    @field_validator("input", "rules")
    @classmethod
    def _readable_file(cls, path: Path) -> Path:
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("output", "rejects_output", "late_output")
    @classmethod
    def _writable_target(cls, target: str) -> str:
        if target not in STREAMS and not Path(target).parent.is_dir():
            raise ValueError(f"directory of {target!r} does not exist")
        return target

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            gap_ms=round(self.gap_seconds * 1000),
            lateness_ms=round(self.allowed_lateness_seconds * 1000),
            idle_timeout_ms=round(self.idle_timeout_seconds * 1000),
        )


def load_settings(**overrides: object) -> Settings:
    """Read the environment (overrides win); raise SettingsError with one message on failure."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "PROMO_" + "_".join(str(part) for part in item["loc"]).upper()
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message} (got {item.get('input')!r})")
        raise SettingsError("; ".join(problems)) from None


def load_rules_or_exit(path: Path) -> CompiledRules:
    try:
        return load_rules(path)
    except RulesError as error:
        raise SettingsError(f"PROMO_RULES: {error}") from None
