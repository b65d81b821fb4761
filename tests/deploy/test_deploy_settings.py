"""Every variable the deployment files set names something that reads it, with a valid value.

PROMO_* must be a `Settings` field (pydantic-settings ignores unknown ones silently: a typo
would just be a default in production); BYTEWAX_* must be read by the installed Bytewax.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bytewax.recovery
import pytest

from dataflows.settings import Settings
from deploy_helpers import ENTRYPOINT, compose, k8s_objects
from promotion.rules import DEFAULT_RULES_PATH

# Read by deploy/entrypoint.sh, not by the service (checked below to really be read there).
ENTRYPOINT_ONLY = {"PROMO_RECOVERY_PARTITIONS"}
# Without these a Kafka deployment would silently run with localhost defaults.
ESSENTIAL = {"PROMO_MODE", "PROMO_KAFKA_BOOTSTRAP_SERVERS", "PROMO_KAFKA_INPUT_TOPICS"}
# In-container paths that do not exist here; validated as the bundled defaults instead.
PATH_FIELDS = {"rules": DEFAULT_RULES_PATH}


def k8s_env() -> dict[str, str]:
    """The main container's environment: settings ConfigMap (envFrom) + literal env."""
    objects = k8s_objects()
    container = objects["StatefulSet/session-promotions"]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(objects[f"ConfigMap/{source['configMapRef']['name']}"]["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<from valueFrom>")
    return env


def compose_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"compose service {name}: use the mapping form"
        env.update({key: str(value) for key, value in environment.items()})
    return env


SOURCES = {"k8s": k8s_env, "compose": compose_env}


def bytewax_reads(name: str) -> bool:
    """True if the installed Bytewax (Python or its Rust core) mentions the variable."""
    package = Path(bytewax.recovery.__file__).parent
    if any(name in p.read_text() for p in package.glob("*.py")):
        return True
    return any(name.encode() in p.read_bytes() for p in package.glob("_bytewax*.so"))


@pytest.mark.parametrize("source", SOURCES)
def test_promo_variables_are_settings_fields(source: str) -> None:
    fields = {f"PROMO_{name.upper()}" for name in Settings.model_fields}
    names = {k for k in SOURCES[source]() if k.startswith("PROMO_")}
    unknown = names - fields - ENTRYPOINT_ONLY
    assert not unknown, f"{source} sets variables no Settings field reads: {sorted(unknown)}"
    assert ESSENTIAL <= names, f"{source} misses {sorted(ESSENTIAL - names)}"


def test_entrypoint_only_variables_are_read_by_the_entrypoint() -> None:
    for name in ENTRYPOINT_ONLY:
        assert name in ENTRYPOINT.read_text()


@pytest.mark.parametrize("source", SOURCES)
def test_bytewax_variables_exist_in_bytewax(source: str) -> None:
    names = {k for k in SOURCES[source]() if k.startswith("BYTEWAX_")}
    assert "BYTEWAX_DATAFLOW_API_ENABLED" in names
    unknown = {n for n in names if not bytewax_reads(n)}
    assert not unknown, f"{source} sets BYTEWAX_ variables Bytewax 0.21 does not read: {unknown}"


@pytest.mark.parametrize("source", SOURCES)
def test_values_pass_settings_validation(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same validation the service runs at start, on the deployment's values."""
    env = SOURCES[source]()
    for key in list(os.environ):
        if key.startswith("PROMO_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("PROMO_") and key not in ENTRYPOINT_ONLY and value != "<from valueFrom>":
            monkeypatch.setenv(key, value)
    settings: Any = Settings(**PATH_FIELDS)  # raises ValidationError on a bad value
    assert settings.mode == "kafka"
    assert settings.input_topics == ["auth-events", "cart-events"]
