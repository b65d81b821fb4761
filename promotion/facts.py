"""What rules see of a closed session: its facts, with the user's profile as it was before it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Set as AbstractSet
from typing import NamedTuple

from promotion.events import EVENT_TYPES
from promotion.profiles import NO_PROFILE, LazyProfile, ProfileFacts
from promotion.sessions import Session


class SessionFacts(NamedTuple):
    """A closed session as rules see it (read-only: it shares the closed session's data)."""

    user_id: str
    start: int
    end: int
    first_event_id: str
    events: int
    close_reason: str  # "gap" | "logout" | "eof"
    type_counts: dict[str, int]
    cart: Mapping[str, int]
    cart_value: float
    viewed_products: AbstractSet[str]
    viewed_categories: AbstractSet[str]
    profile: ProfileFacts | LazyProfile = NO_PROFILE  # the user's history before this session

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start) / 1000.0


def cart_value(cart: Mapping[str, int], prices: Mapping[str, float]) -> float:
    """Quantity times last seen price (0 when none was given), summed exactly, to the cent."""
    return round(math.fsum(qty * prices.get(product, 0.0) for product, qty in cart.items()), 2)


def session_facts(
    user_id: str,
    session: Session,
    close_reason: str,
    profile: ProfileFacts | LazyProfile = NO_PROFILE,
) -> SessionFacts:
    """Facts of a closed session; its collections are handed over, not copied."""
    return SessionFacts(
        user_id,
        session.start,
        session.end,
        session.first_event_id,
        session.events,
        close_reason,
        dict(zip(EVENT_TYPES, session.type_counts)),
        session.cart,
        cart_value(session.cart, session.prices),
        session.viewed,
        session.categories,
        profile,
    )
