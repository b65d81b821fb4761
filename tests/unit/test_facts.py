"""Session facts built from an accumulator are a complete, ordinary SessionFacts."""

from __future__ import annotations

from promotion.facts import SessionFacts, new_accumulator, fold, session_facts
from promotion.profiles import NO_PROFILE


def test_session_facts_fill_every_field_in_order() -> None:
    acc = new_accumulator((1_000, "e1", "u1", "add_to_cart", "cart", "p1", "books", 2.5, 2))
    fold(acc, (2_000, "e2", "u1", "product_view", "catalog", "p2", "toys", None, 1))
    facts = session_facts("u1", acc, "gap")
    assert type(facts) is SessionFacts and len(facts) == len(SessionFacts._fields)
    expected = SessionFacts(
        user_id="u1", start=1_000, end=2_000, first_event_id="e1", events=2, close_reason="gap",
        type_counts={"login": 0, "logout": 0, "product_view": 1, "add_to_cart": 1,
                     "remove_from_cart": 0, "checkout_start": 0, "payment_complete": 0},
        cart={"p1": 2}, cart_value=5.0, viewed_products={"p2"}, viewed_categories={"books", "toys"},
        profile=NO_PROFILE,
    )
    assert facts._asdict() == expected._asdict()
    assert facts.duration_seconds == 1.0
