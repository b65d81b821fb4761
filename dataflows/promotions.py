"""Entry point for `python -m bytewax.run dataflows.promotions`: the flow built from `PROMO_*`.

SIGTERM (Kubernetes, docker stop) is turned into the same interrupt as Ctrl-C, so Bytewax stops
its run loop instead of the process dying mid-write; output after the last snapshot is produced
again on the next start, from the recovery store.
"""

import signal
import threading

from dataflows.flow import build_flow
from dataflows.gc_tuning import tune_garbage_collector
from dataflows.recovery_check import check_run_store
from dataflows.settings import load_settings

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, signal.default_int_handler)

settings = load_settings()
check_run_store(settings)  # before Bytewax meets a missing, empty or mismatched store
flow = build_flow(settings)

tune_garbage_collector()
