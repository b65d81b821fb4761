"""Session accumulators: what a session remembers about its events, folded in event-time order.

An accumulator is a plain list (cheap to snapshot, free of module paths). Events are folded in
(ts, event_id) order, so order-dependent facts (a remove after an add, a payment emptying the cart)
mean the same thing whether the events arrived in order or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from promotion.events import (
    ADD_TO_CART,
    CATEGORY,
    EVENT_ID,
    EVENT_TYPES,
    LOGOUT,
    PAYMENT_COMPLETE,
    PRICE,
    PRODUCT_ID,
    PRODUCT_VIEW,
    QUANTITY,
    REMOVE_FROM_CART,
    TS,
    TYPE,
    TYPE_INDEX,
)
from promotion.profiles import NO_PROFILE, ProfileFacts

# Slots of an accumulator list.
START: Final = 0  # ts of the first event
FIRST_ID: Final = 1  # event_id of the first event: with START, the session's identity
END: Final = 2  # ts of the last event
COUNT: Final = 3  # number of events
ENDED: Final = 4  # True once a logout closed the session
TYPE_COUNTS: Final = 5  # list of per-type counts, in EVENT_TYPES order
CART: Final = 6  # {product_id: quantity > 0} or None when empty
PRICES: Final = 7  # {product_id: last seen price} or None
VIEWED: Final = 8  # set of viewed product ids or None
CATEGORIES: Final = 9  # set of categories seen (views and adds) or None

_N_TYPES: Final = len(EVENT_TYPES)


def new_accumulator(event: tuple) -> list:
    """Start a session with its first event."""
    acc = [event[TS], event[EVENT_ID], event[TS], 0, False, [0] * _N_TYPES, None, None, None, None]
    fold(acc, event)
    return acc


def fold(acc: list, event: tuple) -> None:
    """Add an event that sorts after every event already in `acc`."""
    acc[END] = event[TS]
    acc[COUNT] += 1
    kind = event[TYPE]
    acc[TYPE_COUNTS][TYPE_INDEX[kind]] += 1
    if kind == PRODUCT_VIEW:
        viewed = acc[VIEWED]
        if viewed is None:
            acc[VIEWED] = {event[PRODUCT_ID]}
        else:
            viewed.add(event[PRODUCT_ID])
        _note_category(acc, event[CATEGORY])
    elif kind == ADD_TO_CART:
        product = event[PRODUCT_ID]
        cart = acc[CART]
        if cart is None:
            cart = acc[CART] = {}
        cart[product] = cart.get(product, 0) + event[QUANTITY]
        if event[PRICE] is not None:
            prices = acc[PRICES]
            if prices is None:
                acc[PRICES] = {product: event[PRICE]}
            else:
                prices[product] = event[PRICE]
        _note_category(acc, event[CATEGORY])
    elif kind == REMOVE_FROM_CART:
        cart = acc[CART]
        if cart is not None:
            product = event[PRODUCT_ID]
            left = cart.get(product, 0) - event[QUANTITY]
            if left > 0:
                cart[product] = left
            else:
                cart.pop(product, None)
                if not cart:
                    acc[CART] = None
    elif kind == PAYMENT_COMPLETE:
        acc[CART] = None  # everything in the cart was purchased
    elif kind == LOGOUT:
        acc[ENDED] = True


def _note_category(acc: list, category: str | None) -> None:
    if category is None:
        return
    categories = acc[CATEGORIES]
    if categories is None:
        acc[CATEGORIES] = {category}
    else:
        categories.add(category)


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What rules see of a closed session."""

    user_id: str
    start: int
    end: int
    first_event_id: str
    events: int
    close_reason: str  # "gap" | "logout" | "eof"
    type_counts: dict[str, int]
    cart: dict[str, int]
    cart_value: float
    viewed_products: frozenset[str]
    viewed_categories: frozenset[str]
    profile: ProfileFacts = NO_PROFILE  # the user's history before this session

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start) / 1000.0


def session_facts(
    user_id: str, acc: list, close_reason: str, profile: ProfileFacts = NO_PROFILE
) -> SessionFacts:
    """Freeze a closed session's accumulator into facts for the rules."""
    cart = dict(acc[CART] or {})
    prices = acc[PRICES] or {}
    value = round(sum(qty * prices.get(product, 0.0) for product, qty in cart.items()), 2)
    return SessionFacts(
        user_id=user_id,
        start=acc[START],
        end=acc[END],
        first_event_id=acc[FIRST_ID],
        events=acc[COUNT],
        close_reason=close_reason,
        type_counts=dict(zip(EVENT_TYPES, acc[TYPE_COUNTS])),
        cart=cart,
        cart_value=value,
        viewed_products=frozenset(acc[VIEWED] or ()),
        viewed_categories=frozenset(acc[CATEGORIES] or ()),
        profile=profile,
    )
