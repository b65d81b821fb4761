"""Notifications: the JSON a closed session's decision produces, with a deterministic id.

The id is derived only from the session (user, first event, extent, size) and the decision, never
from arrival order or wall-clock time, so a notification replayed after a crash carries the same id.
"""

from __future__ import annotations

import hashlib

import orjson

from promotion.facts import SessionFacts
from promotion.rules import DEFAULT_VARIANT, Decision
from promotion.timefmt import format_ms


def notification_id(facts: SessionFacts, decision: Decision, rules_version: str) -> str:
    """A UUID-formatted digest of the session's identity and the decision."""
    parts = [
        facts.user_id,
        str(facts.start),
        facts.first_event_id,
        str(facts.end),
        str(facts.events),
        decision.action,
        decision.rule,
        rules_version,
    ]
    if decision.variant != DEFAULT_VARIANT:  # ids of the default variant predate variants
        parts.append(decision.variant)
    key = "\x1f".join(parts)
    h = hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # UUID layout


def build_notification(facts: SessionFacts, decision: Decision, rules_version: str) -> dict:
    return {
        "notification_id": notification_id(facts, decision, rules_version),
        "user_id": facts.user_id,
        "action": decision.action,
        "products": decision.products,
        "rule": decision.rule,
        "rules_version": rules_version,
        "variant": decision.variant,
        "session": {
            "start": format_ms(facts.start),
            "end": format_ms(facts.end),
            "events": facts.events,
            "close_reason": facts.close_reason,
        },
    }


def encode_notification(notification: dict) -> bytes:
    return orjson.dumps(notification)
