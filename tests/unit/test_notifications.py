"""Notification ids are deterministic and identify the session and the decision."""

from __future__ import annotations

import orjson

from promotion.notifications import build_notification, encode_notification, notification_id
from promotion.rules import Decision
from tests.unit.test_rules import facts

DECISION = Decision("START_PROMOTION", "promote-abandoned-cart", ["p1", "p2"])


def test_same_input_same_id() -> None:
    assert notification_id(facts(), DECISION, "v1") == notification_id(facts(), DECISION, "v1")


def test_id_depends_on_session_and_decision() -> None:
    base = notification_id(facts(), DECISION, "v1")
    others = {
        notification_id(facts(user_id="other"), DECISION, "v1"),
        notification_id(facts(start=1), DECISION, "v1"),
        notification_id(facts(first_event_id="x"), DECISION, "v1"),
        notification_id(facts(end=1), DECISION, "v1"),
        notification_id(facts(events=9), DECISION, "v1"),
        notification_id(facts(), DECISION._replace(action="STOP_PROMOTION"), "v1"),
        notification_id(facts(), DECISION._replace(rule="other"), "v1"),
        notification_id(facts(), DECISION, "v2"),
        notification_id(facts(), DECISION._replace(variant="b"), "v1"),
    }
    assert base not in others and len(others) == 9


def test_id_is_stable_across_releases() -> None:
    # Pinned: downstream consumers deduplicate on this id; changing the scheme breaks them.
    assert notification_id(facts(), DECISION, "v1") == "09ec70b4-5ce5-87ae-8799-ca3f2a50df7e"


def test_notification_shape() -> None:
    decoded = orjson.loads(encode_notification(build_notification(facts(), DECISION, "v1")))
    assert decoded == {
        "notification_id": notification_id(facts(), DECISION, "v1"),
        "user_id": "u",
        "action": "START_PROMOTION",
        "products": ["p1", "p2"],
        "rule": "promote-abandoned-cart",
        "rules_version": "v1",
        "variant": "default",
        "session": {
            "start": "1970-01-01T00:00:00.000Z",
            "end": "1970-01-01T00:01:00.000Z",
            "events": 4,
            "close_reason": "gap",
        },
    }
