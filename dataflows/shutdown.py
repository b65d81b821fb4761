"""A stop by SIGTERM or SIGINT: one line on stderr and exit status 0, resumable from recovery.

Bytewax stops a run when its main thread sees an interrupt between worker steps. Two things
spoil that under `python -m bytewax.run`:

- With one worker, Bytewax (0.21) runs it on the main thread, where Python delivers signals: the
  `KeyboardInterrupt` lands inside a step's Python code, which Bytewax reports as a step failure
  (a Rust panic, a traceback, exit 1). Run as a one-process cluster instead (its address is
  127.0.0.1 port 0: nothing connects), one worker is a thread of its own and the main thread only
  waits and checks signals, so the interrupt always arrives where Bytewax stops the workers
  cleanly. The API server and every other `cli_main` behaviour stay as they are.
- The interrupt then leaves `cli_main` as a `KeyboardInterrupt`, printed with a traceback. The
  stop was asked for, so it is reported in one line and the process exits 0.

The runner's `cli_main` is wrapped in its module (`bytewax.run` as `__main__`), which imports
the flow module before it calls `cli_main`. Output after the last snapshot is produced again on
the next start (file outputs are truncated back to it), so nothing is lost.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A one-process cluster's own address: timely listens on it for no peers (port 0: any free one).
SOLO_ADDRESS = "127.0.0.1:0"


class GracefulStop:
    """Signal handlers and the wrapped runner of one process."""

    def __init__(self, recovery: bool) -> None:
        self.recovery = recovery
        self.received: int | None = None
        self.running = False

    def message(self) -> str:
        name = signal.Signals(self.received or signal.SIGINT).name
        after = ("the next start resumes from the recovery store's last snapshot" if self.recovery
                 else "no recovery store: the next start begins again from the start")
        return f"session-promotions: stopped by {name}; {after}"

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """Before the run: stop at once. During it: interrupt Bytewax's wait (main thread)."""
        if self.received is not None:
            return  # a second Ctrl-C while stopping: the first one is being honoured
        self.received = signum
        if not self.running:
            print(self.message(), file=sys.stderr)
            raise SystemExit(0)
        raise KeyboardInterrupt

    def wrap(self, cli_main: Callable[..., None]) -> Callable[..., None]:
        def run(flow: Any, *, workers_per_process: int | None = None,
                process_id: int | None = None, addresses: list[str] | None = None,
                **kwargs: Any) -> None:
            workers_per_process = workers_per_process or 1  # None when -w is not given
            if addresses is None and workers_per_process == 1:  # a thread of its own, see above
                process_id, addresses = 0, [SOLO_ADDRESS]
            self.running = True
            try:
                cli_main(flow, workers_per_process=workers_per_process, process_id=process_id,
                         addresses=addresses, **kwargs)
            except KeyboardInterrupt:
                if self.received is None:
                    raise
                print(self.message(), file=sys.stderr)
                sys.stderr.flush()
                raise SystemExit(0) from None

        return run


def install(runner: ModuleType, recovery: bool) -> GracefulStop | None:
    """Handle stop signals and wrap the runner's `cli_main`; None where that cannot be done
    (not on the main thread, or a runner other than `python -m bytewax.run`)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(runner, "cli_main"):
        return None
    stop = GracefulStop(recovery)
    for number in STOP_SIGNALS:
        signal.signal(number, stop.handle)
    runner.cli_main = stop.wrap(runner.cli_main)
    return stop
