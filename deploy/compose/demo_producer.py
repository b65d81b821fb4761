"""Demo traffic for the compose setup: generated events -> auth-events / cart-events.

Reads JSON lines on stdin (`python -m dataflows.cli generate - ...`) and produces each to the
topic the service reads its source from: logins/logouts to auth-events, everything else
(catalog, cart, payment, and unparsable records, which the service dead-letters) to
cart-events. Keyed by user_id so a user's events stay in one partition, in order.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator

AUTH_TOPIC = "auth-events"
CART_TOPIC = "cart-events"


def route(line: bytes) -> tuple[str, bytes | None]:
    """(topic, key) for one input line; bad records go to the cart topic unkeyed."""
    try:
        event = json.loads(line)
    except ValueError:
        return CART_TOPIC, None
    if not isinstance(event, dict):
        return CART_TOPIC, None
    user = event.get("user_id")
    key = user.encode() if isinstance(user, str) else None
    return (AUTH_TOPIC if event.get("source") == "auth" else CART_TOPIC), key


def paced(lines: Iterable[bytes], per_second: float) -> Iterator[bytes]:
    """Yield lines at about `per_second` (0: as fast as possible)."""
    start = time.monotonic()
    for n, line in enumerate(lines):
        if per_second > 0:
            delay = start + n / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="kafka:9092")
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second, 0 = unpaced")
    args = parser.parse_args()

    from confluent_kafka import Producer  # imported late: route() is testable without it

    producer = Producer({"bootstrap.servers": args.bootstrap_servers, "linger.ms": 20})
    lines = (line.rstrip(b"\n") for line in sys.stdin.buffer)
    count = 0
    for line in paced((line for line in lines if line.strip()), args.rate):
        topic, key = route(line)
        while True:
            try:
                producer.produce(topic, line, key)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    remaining = producer.flush(30)
    print(f"produced {count - remaining} of {count} records", file=sys.stderr)
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
