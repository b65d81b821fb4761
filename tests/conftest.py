"""Suite-wide settings: property tests must not fail on a busy machine's timing; the Kafka
fixtures (one broker per session, for tests/integration and tests/deploy alike)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.kafka_fixtures import (  # noqa: F401 - fixtures, registered by being imported here
    _local_kafka,
    admin_client,
    kafka_bootstrap,
    kafka_broker,
    topic_factory,
)

# Timing-based checks (deadlines, "input generation is slow") fail on a loaded 2-core machine
# without saying anything about the code. CI runs derandomized, so a red run is reproducible.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
