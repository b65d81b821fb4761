"""The event model: one user action, normalised to epoch milliseconds."""

from __future__ import annotations

from typing import Final, NamedTuple

from promotion.timefmt import format_ms

LOGIN: Final = "login"
LOGOUT: Final = "logout"
PRODUCT_VIEW: Final = "product_view"
ADD_TO_CART: Final = "add_to_cart"
REMOVE_FROM_CART: Final = "remove_from_cart"
CHECKOUT_START: Final = "checkout_start"
PAYMENT_COMPLETE: Final = "payment_complete"

#: Every known event type, in a fixed order (the order of per-type counters in session facts).
EVENT_TYPES: Final[tuple[str, ...]] = (
    LOGIN,
    LOGOUT,
    PRODUCT_VIEW,
    ADD_TO_CART,
    REMOVE_FROM_CART,
    CHECKOUT_START,
    PAYMENT_COMPLETE,
)
TYPE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(EVENT_TYPES)}
#: Types that make no sense without a product.
PRODUCT_TYPES: Final = frozenset({PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART})


class Event(NamedTuple):
    """A validated user action.

    Field order matters: tuples compare by (ts, event_id) first, which is the session order.
    Sessions store events as plain tuples of these fields, never as this class, so that
    snapshots stay free of module paths.
    """

    ts: int  # event time, epoch milliseconds (UTC)
    event_id: str
    user_id: str
    type: str
    source: str
    product_id: str | None = None
    category: str | None = None
    price: float | None = None
    quantity: int = 1


# Index constants for events held as plain tuples in session state.
TS: Final = 0
EVENT_ID: Final = 1
USER_ID: Final = 2
TYPE: Final = 3
SOURCE: Final = 4
PRODUCT_ID: Final = 5
CATEGORY: Final = 6
PRICE: Final = 7
QUANTITY: Final = 8


def event_to_dict(event: tuple) -> dict[str, object]:
    """The normalised JSON form of an event (used for the late-events output)."""
    return {
        "event_id": event[EVENT_ID],
        "user_id": event[USER_ID],
        "type": event[TYPE],
        "ts": format_ms(event[TS]),
        "source": event[SOURCE],
        "product_id": event[PRODUCT_ID],
        "category": event[CATEGORY],
        "price": event[PRICE],
        "quantity": event[QUANTITY],
    }
