"""Settings from `PROMO_*` environment variables, validated once at start."""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataflows.sinks import STREAMS
from dataflows.sources import input_files
from promotion.rules import DEFAULT_RULES_PATH, CompiledRules, RulesError, load_rules
from promotion.shard import SessionConfig

DEFAULT_SAMPLE = Path(__file__).with_name("data") / "sample.jsonl"
TEN_YEARS_S = 10 * 365 * 86_400


class SettingsError(SystemExit):
    """A configuration problem: exits the process with one clear message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"session-promotions: invalid configuration: {message}")


class Settings(BaseSettings):
    """Every knob of the service; the environment variable is `PROMO_` + the field name."""

    model_config = SettingsConfigDict(env_prefix="PROMO_", extra="ignore", frozen=True)

    input: Path = Field(DEFAULT_SAMPLE, description="JSON-lines file, or directory of *.jsonl files")
    output: str = Field("-", description="notifications: file path, or - for stdout")
    # Records never share a stream with log lines by default: stderr is for people.
    rejects_output: str = Field("rejects.jsonl", description="rejected records: path, -, or stderr")
    late_output: str = Field("late.jsonl", description="late events: path, -, or stderr")
    # Times are kept in whole milliseconds: anything shorter than 1 ms is refused, not rounded to 0.
    # At most ten years, so that event-time arithmetic stays within 64-bit integers (the kernel).
    gap_seconds: Annotated[float, Field(ge=0.001, le=TEN_YEARS_S, allow_inf_nan=False)] = 300.0
    allowed_lateness_seconds: Annotated[float, Field(ge=0, le=TEN_YEARS_S, allow_inf_nan=False)] = 10.0
    idle_timeout_seconds: Annotated[float, Field(ge=0.001, le=TEN_YEARS_S, allow_inf_nan=False)] = 30.0
    tick_seconds: Annotated[float, Field(ge=0.001, le=60)] = 1.0
    rules: Path = DEFAULT_RULES_PATH
    rules_watch: bool = True
    rules_poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    profile_ttl_days: Annotated[float, Field(ge=0, le=3650)] = 30.0
    shards: Annotated[int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    max_event_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 65_536
    #: Events whose ts is further than this ahead of the wall clock are dead-lettered (0: off).
    max_future_seconds: Annotated[float, Field(ge=0, le=TEN_YEARS_S, allow_inf_nan=False)] = 3600.0
    #: How long a cluster process waits for its peers' host names to resolve (Kubernetes DNS
    #: lags behind a StatefulSet's pods at start) before it gives up with one line.
    peer_resolve_seconds: Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)] = 120.0
    #: Who keeps sessions and decodes: the compiled kernel, or the Python specification.
    engine: Literal["kernel", "python"] = "kernel"

    # -- Kafka (PROMO_MODE=kafka) ------------------------------------------------------------------
    mode: Literal["file", "kafka"] = "file"
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_input_topics: str = "auth-events,cart-events"
    kafka_notifications_topic: str = "promotions"
    kafka_dlq_topic: str = "promotions-dlq"
    kafka_late_topic: str = "promotions-late"
    kafka_start: Literal["earliest", "latest"] = "earliest"
    kafka_stop_at_end: bool = False
    #: Drop, after a resume, the records an earlier run already wrote (see README, Recovery).
    kafka_exactly_once: bool = True
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_consumer_config: str = Field("{}", description="JSON object of extra librdkafka consumer keys")
    kafka_producer_config: str = Field("{}", description="JSON object of extra librdkafka producer keys")

    @field_validator("rules")
    @classmethod
    def _readable_file(cls, path: Path) -> Path:
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("input")
    @classmethod
    def _readable_input(cls, path: Path) -> Path:
        if path.is_dir():
            input_files(path)  # hidden files are skipped; a non-file *.jsonl is an error
        elif not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("max_future_seconds")
    @classmethod
    def _off_or_a_millisecond(cls, seconds: float) -> float:
        if 0 < seconds < 0.001:
            raise ValueError("must be 0 (off) or at least 0.001")
        return seconds

    @field_validator("output", "rejects_output", "late_output")
    @classmethod
    def _writable_target(cls, target: str) -> str:
        if target in STREAMS:
            return target
        if Path(target).is_dir():
            raise ValueError(f"{target!r} is a directory, not a file")
        if not Path(target).parent.is_dir():
            raise ValueError(f"directory of {target!r} does not exist")
        return target

    @model_validator(mode="after")
    def _distinct_files(self) -> Settings:
        """Two outputs on one file would overwrite each other; an output on the input, worse."""
        seen: dict[Path, str] = {}
        if self.mode == "file" and self.input.is_file():
            seen[self.input.resolve()] = "PROMO_INPUT"
        for name in ("output", "rejects_output", "late_output"):
            target = getattr(self, name)
            if target in STREAMS or target == "/dev/null":
                continue
            path = Path(target).resolve()
            if path in seen:
                raise ValueError(f"PROMO_{name.upper()} and {seen[path]} name the same file {target!r}")
            seen[path] = f"PROMO_{name.upper()}"
        return self

    @field_validator("kafka_consumer_config", "kafka_producer_config")
    @classmethod
    def _json_object(cls, text: str) -> str:
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError("must be a JSON object of librdkafka settings")
        return text

    @field_validator("kafka_input_topics")
    @classmethod
    def _topic_list(cls, text: str) -> str:
        if not [t for t in text.split(",") if t.strip()]:
            raise ValueError("name at least one topic")
        return text

    @property
    def input_topics(self) -> list[str]:
        return [t.strip() for t in self.kafka_input_topics.split(",") if t.strip()]

    def kafka_common(self) -> dict[str, Any]:
        """librdkafka settings shared by consumers, producers and the admin client. librdkafka's
        own log lines go through Python logging (to stderr), not straight to the process's fd 2."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
            "logger": logging.getLogger("librdkafka"),
        }
        optional = {
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
            "ssl.key.password": self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        return config

    def kafka_consumer(self) -> dict[str, Any]:
        return {
            **self.kafka_common(),
            "group.id": "session-promotions",  # required by librdkafka; offsets live in snapshots
            "enable.auto.commit": False,
            **json.loads(self.kafka_consumer_config),
        }

    def kafka_producer(self) -> dict[str, Any]:
        return {**self.kafka_common(), "linger.ms": 5, **json.loads(self.kafka_producer_config)}

    @property
    def max_future_ms(self) -> int:
        """`PROMO_MAX_FUTURE_SECONDS` in milliseconds (0: no future-timestamp guard)."""
        return round(self.max_future_seconds * 1000)

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            gap_ms=round(self.gap_seconds * 1000),
            lateness_ms=round(self.allowed_lateness_seconds * 1000),
            idle_timeout_ms=round(self.idle_timeout_seconds * 1000),
            profile_ttl_ms=round(self.profile_ttl_days * 86_400_000),
        )


def load_settings(**overrides: object) -> Settings:
    """Read the environment (overrides win); raise SettingsError with one message on failure."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings.session_config()  # the same checks the session engine makes
        return settings
    except ValueError as error:
        if not isinstance(error, ValidationError):
            raise SettingsError(str(error)) from None
        problems = []
        for item in error.errors():
            name = "PROMO_" + "_".join(str(part) for part in item["loc"]).upper()
            if not item["loc"]:  # a check across settings names its variables itself
                problems.append(str(item["msg"]).removeprefix("Value error, "))
                continue
            message = str(item["msg"]).removeprefix("Value error, ")
            secret = any(word in name for word in ("PASSWORD", "SECRET", "SASL", "SSL"))
            shown = "hidden" if secret else repr(item.get("input"))
            problems.append(f"{name}: {message} (got {shown})")
        raise SettingsError("; ".join(problems)) from None


#: `PROMO_*` variables that are not settings but are read by the image's entrypoint.
ENTRYPOINT_VARIABLES = ("PROMO_RECOVERY_PARTITIONS",)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per `PROMO_*` variable that no setting reads (a misspelling is otherwise
    silently ignored), naming the closest known variable when there is one."""
    known = [f"PROMO_{name.upper()}" for name in Settings.model_fields] + list(ENTRYPOINT_VARIABLES)
    warnings = []
    for name in sorted(environ):
        if not name.startswith("PROMO_") or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"session-promotions: warning: {name} is not a setting and is ignored{hint}")
    return warnings


def load_rules_or_exit(path: Path) -> CompiledRules:
    try:
        return load_rules(path)
    except RulesError as error:
        raise SettingsError(f"PROMO_RULES: {error}") from None
