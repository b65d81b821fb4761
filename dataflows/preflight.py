"""Bytewax's own directories, checked before the run so a mistake is one line naming the variable.

Bytewax reports these from inside the run, as a traceback whose message may not even name the
path (`FileNotFoundError: No such file or directory (os error 2)` for a missing API cache).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _directory_problem(path: Path, writable: bool) -> str | None:
    if not path.exists():
        return f"directory {str(path)!r} does not exist"
    if not path.is_dir():
        return f"{str(path)!r} is not a directory"
    if writable and not os.access(path, os.W_OK | os.X_OK):
        return f"directory {str(path)!r} is not writable"
    return None


def bytewax_problems(environ: Mapping[str, str], recovery_directory: Path | None) -> list[str]:
    """What would make Bytewax fail at start: the API server's cache directory (it writes
    dataflow.json there, in the working directory by default) and the recovery directory."""
    problems = []
    if "BYTEWAX_DATAFLOW_API_ENABLED" in environ:  # any value enables it, as in Bytewax
        cache = Path(environ.get("BYTEWAX_DATAFLOW_API_CACHE_PATH", "."))
        problem = _directory_problem(cache, writable=True)
        if problem:
            problems.append(f"BYTEWAX_DATAFLOW_API_CACHE_PATH: {problem} "
                            "(the API server writes dataflow.json there)")
    # A missing store is dataflows/recovery_check.py's to explain (it names the init command).
    if recovery_directory is not None and recovery_directory.exists():
        problem = _directory_problem(recovery_directory, writable=True)
        if problem:
            problems.append(f"recovery directory (-r / BYTEWAX_RECOVERY_DIRECTORY): {problem} "
                            "(create it with: promotions recovery init DIR N)")
    return problems
