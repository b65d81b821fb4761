"""The compose demo producer gives up with one line when no broker answers."""

from __future__ import annotations

import subprocess
import sys

from deploy_helpers import DEPLOY


def test_an_unreachable_broker_is_one_line_and_exit_1() -> None:
    done = subprocess.run([sys.executable, str(DEPLOY / "compose" / "demo_producer.py"),
                           "--bootstrap-servers", "127.0.0.1:1", "--timeout", "2"],
                          input=b'{"event_id":"e1","user_id":"u1"}\n', capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "demo_producer: cannot reach Kafka at 127.0.0.1:1: "
        "Failed to get metadata: Local: Broker transport failure"]
