"""Session facts built from a session are a complete, ordinary SessionFacts."""

from __future__ import annotations

from promotion.events import Event
from promotion.facts import SessionFacts, cart_value, session_facts
from promotion.profiles import NO_PROFILE
from promotion.sessions import Session


def test_session_facts_fill_every_field_in_order() -> None:
    session = Session.starting_with(Event(1_000, "e1", "u1", "add_to_cart", "cart", "p1", "books", 2.5, 2))
    session.add(Event(2_000, "e2", "u1", "product_view", "catalog", "p2", "toys", None, 1))
    facts = session_facts("u1", session, "gap")
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


def test_cart_value_is_summed_exactly_whatever_the_order() -> None:
    prices = {"a": 0.1, "b": 0.2, "c": 1e16, "d": 0.3}
    cart = {"a": 1, "b": 1, "c": 1, "d": 1}
    reordered = {k: cart[k] for k in ("c", "a", "d", "b")}
    assert cart_value(cart, prices) == cart_value(reordered, prices) == 1e16
    assert cart_value({"a": 3}, prices) == 0.3 and cart_value({"x": 2}, prices) == 0.0
