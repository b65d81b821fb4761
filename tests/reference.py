"""Whole-input reference implementation of the session semantics.

Deliberately simple and slow: it looks at the entire input at once (split off
late events, de-duplicate, sort, then group).  It exists only to be compared
against the incremental streaming implementation in property tests, so it must
stay obviously correct.  Pure Python, stdlib only, no project imports.

Semantics (see the spec in the docstring of ``reference_sessions``):

1. Lateness: in arrival order, an event is behind the watermark iff
   ``ts < W = (max ts of all events before it in arrival order) - lateness_ms``.
   It is late unless it repeats (user_id, event_id) of an event, not itself behind,
   that arrived before it and whose session is still open at that W: the
   session formed by the user's earlier arrivals, open while
   ``W <= its last ts`` (+ ``gap_ms`` unless that is a logout). Such a retry is
   dropped, not late.
2. Dedup: among non-late events, per user, only the first occurrence (arrival
   order) of an ``event_id`` is kept.
3. Sessions: per user, sort by (ts, event_id); an event joins the current
   session iff that session was not ended by a logout and
   ``ts - session_last_ts <= gap_ms``; a logout ends its session.
4. Close reason: "logout" if the session contains a logout; else "gap" if the
   user has a later session or ``final_watermark > end + gap_ms``; else "eof",
   with ``final_watermark = max ts over all events - lateness_ms``.
5. Rules: "stop-after-payment" (STOP_PROMOTION) if any payment_complete, else
   "promote-abandoned-cart" (START_PROMOTION) if some product has qty > 0 at
   the end of the session, else no action.
"""

from __future__ import annotations

from dataclasses import dataclass

STOP_PROMOTION = "STOP_PROMOTION"
START_PROMOTION = "START_PROMOTION"
RULE_STOP_AFTER_PAYMENT = "stop-after-payment"
RULE_PROMOTE_ABANDONED_CART = "promote-abandoned-cart"


@dataclass(frozen=True)
class RefSession:
    user_id: str
    start: int  # ts of first event (ms)
    end: int  # ts of last event (ms)
    event_ids: tuple[str, ...]  # in sorted order (ts, then event_id)
    close_reason: str  # "logout" | "gap" | "eof"
    action: str | None  # "STOP_PROMOTION" | "START_PROMOTION" | None
    products: tuple[str, ...]  # promoted products, sorted; () unless START
    rule: str | None  # "stop-after-payment" | "promote-abandoned-cart" | None


def _sort_key(event: dict) -> tuple:
    return (event["ts"], event["event_id"])


def _quantity(event: dict) -> int:
    # "quantity (int, default 1 if absent)"; an explicit None is treated as absent.
    q = event.get("quantity")
    if q is None:
        return 1
    return q


# --------------------------------------------------------------------------
# Step 1: lateness
# --------------------------------------------------------------------------
def split_late(events: list[dict], lateness_ms: int) -> tuple[list[dict], list[dict]]:
    """Return (on_time_events, late_events), both in arrival order."""
    on_time = []
    late = []
    max_ts_before = None  # max ts of ALL events before the current one
    for event in events:
        if max_ts_before is not None and event["ts"] < max_ts_before - lateness_ms:
            late.append(event)
        else:
            on_time.append(event)
        if max_ts_before is None or event["ts"] > max_ts_before:
            max_ts_before = event["ts"]
    return on_time, late


def drop_open_retries(
    events: list[dict], lateness_ms: int, gap_ms: int
) -> list[dict]:
    """The events behind the watermark that are late: not retries of an open session's event."""
    late = []
    before: list[dict] = []  # events not behind the watermark, in arrival order
    max_ts = None
    for event in events:
        mark = None if max_ts is None else max_ts - lateness_ms
        if mark is not None and event["ts"] < mark:
            if not _repeats_an_open_session(event, before, mark, gap_ms):
                late.append(event)
        else:
            before.append(event)
        if max_ts is None or event["ts"] > max_ts:
            max_ts = event["ts"]
    return late


def _repeats_an_open_session(event: dict, before: list[dict], mark: int, gap_ms: int) -> bool:
    mine = deduplicate([e for e in before if e["user_id"] == event["user_id"]])
    for group in group_user_events(mine, gap_ms):
        if any(e["event_id"] == event["event_id"] for e in group):
            last = group[-1]
            closes_at = last["ts"] if last["type"] == "logout" else last["ts"] + gap_ms
            return mark <= closes_at
    return False


# --------------------------------------------------------------------------
# Step 2: deduplication
# --------------------------------------------------------------------------
def deduplicate(events: list[dict]) -> list[dict]:
    """Keep the first occurrence (in the given order) of each (user_id, event_id)."""
    seen = set()
    kept = []
    for event in events:
        key = (event["user_id"], event["event_id"])
        if key in seen:
            continue
        seen.add(key)
        kept.append(event)
    return kept


# --------------------------------------------------------------------------
# Step 3: grouping one user's events into sessions
# --------------------------------------------------------------------------
def group_user_events(user_events: list[dict], gap_ms: int) -> list[list[dict]]:
    """Group ONE user's (deduplicated) events into lists of events, one per session."""
    ordered = sorted(user_events, key=_sort_key)
    groups: list[list[dict]] = []
    current: list[dict] | None = None
    current_ended_by_logout = False
    for event in ordered:
        joins = (
            current is not None
            and not current_ended_by_logout
            and event["ts"] - current[-1]["ts"] <= gap_ms
        )
        if joins:
            current.append(event)
        else:
            current = [event]
            groups.append(current)
            current_ended_by_logout = False
        if event["type"] == "logout":
            current_ended_by_logout = True
    return groups


# --------------------------------------------------------------------------
# Step 5: facts and rules for one session
# --------------------------------------------------------------------------
def evaluate_rules(session_events: list[dict]) -> tuple[str | None, tuple[str, ...], str | None]:
    """Return (action, products, rule) for the events of one session (sorted)."""
    cart: dict = {}
    paid = False
    for event in session_events:
        kind = event["type"]
        if kind == "add_to_cart":
            product = event.get("product_id")
            cart[product] = cart.get(product, 0) + _quantity(event)
        elif kind == "remove_from_cart":
            product = event.get("product_id")
            if product in cart:
                cart[product] = max(0, cart[product] - _quantity(event))
        elif kind == "payment_complete":
            cart.clear()
            paid = True

    if paid:
        return STOP_PROMOTION, (), RULE_STOP_AFTER_PAYMENT
    in_cart = sorted(product for product, qty in cart.items() if qty > 0)
    if in_cart:
        return START_PROMOTION, tuple(in_cart), RULE_PROMOTE_ABANDONED_CART
    return None, (), None


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def reference_sessions(
    events: list[dict], gap_ms: int, lateness_ms: int
) -> tuple[list[RefSession], list[dict]]:
    """Returns (sessions sorted by (user_id, start, first event_id), late_events in arrival order)."""
    on_time, _behind = split_late(events, lateness_ms)
    late = drop_open_retries(events, lateness_ms, gap_ms)
    kept = deduplicate(on_time)

    if events:
        final_watermark = max(event["ts"] for event in events) - lateness_ms
    else:
        final_watermark = None  # no events -> no sessions, never used

    by_user: dict[str, list[dict]] = {}
    for event in kept:
        by_user.setdefault(event["user_id"], []).append(event)

    sessions = []
    for user_id, user_events in by_user.items():
        groups = group_user_events(user_events, gap_ms)
        for index, group in enumerate(groups):
            start = group[0]["ts"]
            end = group[-1]["ts"]
            has_logout = any(event["type"] == "logout" for event in group)
            followed_by_another = index < len(groups) - 1
            if has_logout:
                close_reason = "logout"
            elif followed_by_another or final_watermark > end + gap_ms:
                close_reason = "gap"
            else:
                close_reason = "eof"
            action, products, rule = evaluate_rules(group)
            sessions.append(
                RefSession(
                    user_id=user_id,
                    start=start,
                    end=end,
                    event_ids=tuple(event["event_id"] for event in group),
                    close_reason=close_reason,
                    action=action,
                    products=products,
                    rule=rule,
                )
            )

    sessions.sort(key=lambda s: (s.user_id, s.start, s.event_ids[0]))
    return sessions, late


def sorted_reference_sessions(
    events: list[dict], gap_ms: int, lateness_ms: int = 0
) -> tuple[list[RefSession], list[dict]]:
    """The reference applied to the input sorted by (ts, event_id).

    Sorted input is never late for any lateness >= 0, so the late list is
    always empty.  ``lateness_ms`` defaults to 0 as specified, but note that it
    still shifts the final watermark (and thus "gap" vs "eof" of each user's
    last session): to compare against ``reference_sessions(events, gap, L)``,
    pass the same ``lateness_ms=L`` here.  The sort is stable, so among
    duplicates with identical (ts, event_id) the first in arrival order is kept.
    """
    return reference_sessions(sorted(events, key=_sort_key), gap_ms, lateness_ms)


def displaced_within(events: list[dict], lateness_ms: int) -> bool:
    """True iff no event would be late (bounded-disorder precondition holds)."""
    _, late = split_late(events, lateness_ms)
    return not late
