"""Wait until a cluster's peer addresses resolve, before Bytewax connects to them.

On Kubernetes a StatefulSet's pods get their DNS names a little after they start; Bytewax (0.21)
gives up on the first failed lookup with a Rust panic and a traceback, and the pod crash-loops.
Waiting here, with a bound, turns a lag into a delay and a wrong name into one line.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from dataflows.settings import SettingsError

log = logging.getLogger(__name__)


def _resolve(host: str, port: str) -> None:
    socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)


def wait_for_peers(addresses: Sequence[str], timeout_s: float) -> None:
    """Block until every `host:port` resolves; SettingsError naming the first that never does."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"cluster address {address!r} is not host:port "
                                "(-a / BYTEWAX_ADDRESSES / BYTEWAX_HOSTFILE_PATH)")
        retrying = Retrying(stop=stop_after_delay(timeout_s), wait=wait_exponential(0.1, max=2.0),
                            retry=retry_if_exception_type(OSError), reraise=False,
                            before_sleep=lambda state, host=host: log.warning(
                                "waiting for cluster address %s to resolve (%s)", host,
                                state.outcome.exception() if state.outcome else ""))
        try:
            retrying(_resolve, host, port)
        except RetryError as error:
            reason = error.last_attempt.exception()
            raise SettingsError(f"cluster address {address!r} did not resolve within "
                                f"{timeout_s:g} s ({reason}); check -a / BYTEWAX_ADDRESSES / the "
                                "hostfile, or PROMO_PEER_RESOLVE_SECONDS") from None
