"""Session accumulators: what a session remembers about its events, folded in event-time order.

An accumulator is a plain list (cheap to snapshot, free of module paths). Events are folded in
(ts, event_id) order, so order-dependent facts (a remove after an add, a payment emptying the cart)
mean the same thing whether the events arrived in order or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Set as AbstractSet
from types import MappingProxyType
from typing import Final, NamedTuple

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
from promotion.profiles import NO_PROFILE, LazyProfile, ProfileFacts

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
IDS: Final = 10  # event_ids folded in (list; a set once long), so retries are recognised

_IDS_AS_SET: Final = 32

_N_TYPES: Final = len(EVENT_TYPES)


def new_accumulator(event: tuple) -> list:
    """Start a session with its first event."""
    acc = [event[TS], event[EVENT_ID], event[TS], 0, False, [0] * _N_TYPES, None, None, None, None, []]
    fold(acc, event)
    return acc


def fold(acc: list, event: tuple) -> None:
    """Add an event that sorts after every event already in `acc`.

    The hot path of the job (once per event): written flat, with no helper calls.
    """
    acc[END] = event[TS]
    acc[COUNT] += 1
    ids = acc[IDS]
    if ids.__class__ is list:
        ids.append(event[EVENT_ID])
        if len(ids) > _IDS_AS_SET:
            acc[IDS] = set(ids)
    else:
        ids.add(event[EVENT_ID])
    kind = event[TYPE]
    acc[TYPE_COUNTS][TYPE_INDEX[kind]] += 1
    if kind == PRODUCT_VIEW:
        viewed = acc[VIEWED]
        if viewed is None:
            acc[VIEWED] = {event[PRODUCT_ID]}
        else:
            viewed.add(event[PRODUCT_ID])
    elif kind == ADD_TO_CART:
        product = event[PRODUCT_ID]
        cart = acc[CART]
        if cart is None:
            acc[CART] = {product: event[QUANTITY]}
        else:
            cart[product] = cart.get(product, 0) + event[QUANTITY]
        price = event[PRICE]
        if price is not None:
            prices = acc[PRICES]
            if prices is None:
                acc[PRICES] = {product: price}
            else:
                prices[product] = price
    else:
        if kind == REMOVE_FROM_CART:
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
        return
    category = event[CATEGORY]  # views and adds tell the session's categories
    if category is not None:
        categories = acc[CATEGORIES]
        if categories is None:
            acc[CATEGORIES] = {category}
        else:
            categories.add(category)


class SessionFacts(NamedTuple):
    """What rules see of a closed session (read-only: it shares the closed accumulator's data)."""

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


_NOTHING: Final[frozenset[str]] = frozenset()
_NO_CART: Final[Mapping[str, int]] = MappingProxyType({})
_NO_PRICES: Final[Mapping[str, float]] = MappingProxyType({})
_new_tuple: Final = tuple.__new__


def session_facts(
    user_id: str, acc: list, close_reason: str, profile: ProfileFacts | LazyProfile = NO_PROFILE
) -> SessionFacts:
    """Facts of a closed session; the accumulator is handed over, not copied."""
    cart = acc[CART]
    if cart:
        prices = acc[PRICES] or _NO_PRICES
        value = round(sum([qty * prices.get(product, 0.0) for product, qty in cart.items()]), 2)
    else:
        cart, value = _NO_CART, 0.0
    # tuple.__new__ rather than SessionFacts(...): once per closed session, it skips the
    # NamedTuple's Python-level __new__ (same fields, same order).
    return _new_tuple(SessionFacts, (
        user_id,
        acc[START],
        acc[END],
        acc[FIRST_ID],
        acc[COUNT],
        close_reason,
        dict(zip(EVENT_TYPES, acc[TYPE_COUNTS])),
        cart,
        value,
        acc[VIEWED] or _NOTHING,
        acc[CATEGORIES] or _NOTHING,
        profile,
    ))
