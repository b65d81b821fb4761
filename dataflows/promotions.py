"""Entry point for `python -m bytewax.run dataflows.promotions`: the flow built from `PROMO_*`.

SIGTERM (Kubernetes, docker stop) is turned into the same interrupt as Ctrl-C, so Bytewax stops
its run loop instead of the process dying mid-write; output after the last snapshot is produced
again on the next start, from the recovery store.
"""

import gc
import signal
import threading

from dataflows.flow import build_flow
from dataflows.settings import load_settings

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, signal.default_int_handler)

flow = build_flow(load_settings())

# Session state is millions of small lists and tuples; with the default thresholds (700, 10, 10)
# the cyclic collector walks them again and again (~25% of the job's time, measured in bench/).
# Nothing here builds reference cycles at volume, so collect far less often.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
