"""Cluster peers: a name that lags is waited for, a wrong one is one line."""

from __future__ import annotations

import pytest

from dataflows.peers import wait_for_peers
from dataflows.settings import SettingsError


def test_resolvable_peers_pass_at_once() -> None:
    wait_for_peers(["127.0.0.1:2101", "localhost:2102"], timeout_s=5)


def test_a_name_that_never_resolves_is_one_line_after_the_wait() -> None:
    with pytest.raises(SettingsError) as raised:
        wait_for_peers(["127.0.0.1:2101", "no-such-peer.invalid:2102"], timeout_s=0.3)
    message = str(raised.value)
    assert message.startswith("session-promotions: invalid configuration: cluster address "
                              "'no-such-peer.invalid:2102' did not resolve within 0.3 s")
    assert "\n" not in message


def test_an_address_without_a_port_is_refused() -> None:
    with pytest.raises(SettingsError, match="is not host:port"):
        wait_for_peers(["peer-0"], timeout_s=1)
