"""Demo traffic for the compose setup: generated events -> auth-events / cart-events.

Reads JSON lines on stdin (`python -m dataflows.cli generate - ...`) and produces each to the
topic the service reads its source from: logins/logouts to auth-events, everything else
(catalog, cart, payment, and unparsable records, which the service dead-letters) to
cart-events. Keyed by user_id so a user's events stay in one partition, in order.

An unreachable broker is one line and exit 1 (within --timeout), not endless retries.
"""

from __future__ import annotations

import argparse
import json
import logging
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
    parser.add_argument("--bootstrap-servers", default="kafka:9092", help="Kafka brokers")
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second, 0 = unpaced")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the broker, at start and per record (default 30)")
    args = parser.parse_args()

    from confluent_kafka import KafkaException, Producer  # late: route() is testable without it

    quiet = logging.getLogger("librdkafka")  # its connection retries would repeat on stderr
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    producer = Producer({"bootstrap.servers": args.bootstrap_servers, "linger.ms": 20,
                         "message.timeout.ms": int(args.timeout * 1000), "logger": quiet})
    try:
        producer.list_topics(timeout=args.timeout)
    except KafkaException as error:
        print(f"demo_producer: cannot reach Kafka at {args.bootstrap_servers}: {error.args[0].str()}",
              file=sys.stderr)
        return 1
    failed: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    lines = (line.rstrip(b"\n") for line in sys.stdin.buffer)
    count = 0
    for line in paced((line for line in lines if line.strip()), args.rate):
        topic, key = route(line)
        while True:
            try:
                producer.produce(topic, line, key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    remaining = producer.flush(args.timeout)
    lost = remaining + len(failed)
    detail = f" (first error: {failed[0]})" if failed else ""
    print(f"produced {count - lost} of {count} records{detail}", file=sys.stderr)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
