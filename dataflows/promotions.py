"""Entry point for `python -m bytewax.run dataflows.promotions`: the flow built from `PROMO_*`.

Before the flow is built: human logs go to stderr (records go to their own outputs), a warning
names any `PROMO_*` variable no setting reads, Bytewax's own directories are checked, and a stop
by SIGTERM or SIGINT becomes a one-line exit 0 that resumes from the recovery store
(dataflows/shutdown.py).
"""

import logging
import os
import sys

from dataflows import shutdown
from dataflows.flow import build_flow
from dataflows.gc_tuning import tune_garbage_collector
from dataflows.peers import wait_for_peers
from dataflows.preflight import bytewax_problems
from dataflows.recovery_check import bytewax_run_arguments, check_run_store, run_recovery_directory
from dataflows.settings import SettingsError, load_settings, unknown_variables


logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
for warning in unknown_variables(os.environ):
    print(warning, file=sys.stderr)
_arguments = bytewax_run_arguments()  # None unless run by `python -m bytewax.run`
_recovery = run_recovery_directory()
_problems = bytewax_problems(os.environ, _recovery)
if _problems:
    raise SettingsError("; ".join(_problems))
if _arguments is not None:
    shutdown.install(sys.modules["__main__"], recovery=_recovery is not None)

settings = load_settings()
check_run_store(settings)  # before Bytewax meets a missing, empty or mismatched store
if _arguments and _arguments.get("addresses"):
    wait_for_peers(_arguments["addresses"], settings.peer_resolve_seconds)
flow = build_flow(settings)

tune_garbage_collector()
