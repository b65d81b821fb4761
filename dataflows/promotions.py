"""Entry point for `python -m bytewax.run dataflows.promotions`: the flow built from `PROMO_*`.

Before the flow is built: human logs go to stderr (records go to their own outputs), a warning
names any `PROMO_*` variable no setting reads, Bytewax's own directories are checked, and a stop
by SIGTERM or SIGINT becomes a one-line exit 0 that resumes from the recovery store
(dataflows/shutdown.py).
"""

import logging
import os
import sys
from pathlib import Path

from dataflows import shutdown
from dataflows.flow import build_flow
from dataflows.gc_tuning import tune_garbage_collector
from dataflows.peers import wait_for_peers
from dataflows.preflight import bytewax_problems
from dataflows.recovery_check import bytewax_run_arguments, check_run_store
from dataflows.settings import SettingsError, load_settings, unknown_variables


def _runner_recovery_directory() -> Path | None:
    """The recovery directory `bytewax.run` parsed (it imports this module after parsing)."""
    parsed = bytewax_run_arguments()
    config = parsed["recovery_config"] if parsed is not None else None
    return None if config is None else Path(config.db_dir)


logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
for warning in unknown_variables(os.environ):
    print(warning, file=sys.stderr)
_recovery = _runner_recovery_directory()
_problems = bytewax_problems(os.environ, _recovery)
if _problems:
    raise SettingsError("; ".join(_problems))
_main = sys.modules.get("__main__")
if getattr(getattr(_main, "__spec__", None), "name", None) == "bytewax.run":
    shutdown.install(_main, recovery=_recovery is not None)

settings = load_settings()
check_run_store(settings)  # before Bytewax meets a missing, empty or mismatched store
_arguments = bytewax_run_arguments()
if _arguments and _arguments.get("addresses"):
    wait_for_peers(_arguments["addresses"], settings.peer_resolve_seconds)
flow = build_flow(settings)

tune_garbage_collector()
