"""Hand-written examples for tests/reference.py; every expected value is worked out by hand from the spec."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))  # repo root

from tests.reference import (  # noqa: E402
    RefSession,
    displaced_within,
    reference_sessions,
    sorted_reference_sessions,
)

GAP = 100


def ev(event_id, ts, type="product_view", user="u1", **extra):
    event = {"event_id": event_id, "user_id": user, "type": type, "ts": ts, "source": "web"}
    event.update(extra)
    return event


def add(event_id, ts, product, quantity=None, user="u1"):
    extra = {"product_id": product, "category": "c", "price": 9.5}
    if quantity is not None:
        extra["quantity"] = quantity
    return ev(event_id, ts, "add_to_cart", user, **extra)


def remove(event_id, ts, product, quantity=None, user="u1"):
    extra = {"product_id": product}
    if quantity is not None:
        extra["quantity"] = quantity
    return ev(event_id, ts, "remove_from_cart", user, **extra)


def S(start, end, ids, reason, user="u1", action=None, products=(), rule=None):
    return RefSession(user, start, end, tuple(ids), reason, action, tuple(products), rule)


def START(start, end, ids, reason, products, user="u1"):
    return S(start, end, ids, reason, user, "START_PROMOTION", products, "promote-abandoned-cart")


def STOP(start, end, ids, reason, user="u1"):
    return S(start, end, ids, reason, user, "STOP_PROMOTION", (), "stop-after-payment")


def sessions(events, gap=GAP, lateness=0):
    result, late = reference_sessions(events, gap, lateness)
    assert late == []
    return result


# ---------------------------------------------------------------- basics
def test_empty_input():
    assert reference_sessions([], GAP, 0) == ([], [])


def test_single_event_is_eof():
    # final watermark = 10 - 0 = 10, not > 10 + 100
    assert sessions([ev("a", 10)]) == [S(10, 10, ["a"], "eof")]


# ---------------------------------------------------------------- gap
def test_gap_exactly_equal_joins():
    assert sessions([ev("a", 0), ev("b", 100), ev("c", 200)]) == [S(0, 200, ["a", "b", "c"], "eof")]


def test_gap_plus_one_splits():
    assert sessions([ev("a", 0), ev("b", 101)]) == [
        S(0, 0, ["a"], "gap"),
        S(101, 101, ["b"], "eof"),
    ]


def test_gap_measured_from_last_event_not_session_start():
    # 0 -> 90 -> 180 -> 270: each step <= 100, so one session though it spans 270
    assert sessions([ev("a", 0), ev("b", 90), ev("c", 180), ev("d", 270)]) == [
        S(0, 270, ["a", "b", "c", "d"], "eof")
    ]


def test_same_ts_events_ordered_by_event_id():
    assert sessions([ev("b", 5), ev("c", 5), ev("a", 5)]) == [S(5, 5, ["a", "b", "c"], "eof")]


# ---------------------------------------------------------------- logout
def test_logout_ends_session_and_belongs_to_it():
    events = [ev("a", 0), ev("b", 50, "logout"), ev("c", 60)]
    assert sessions(events) == [
        S(0, 50, ["a", "b"], "logout"),
        S(60, 60, ["c"], "eof"),
    ]


def test_same_ts_after_logout_larger_id_new_session_smaller_id_belongs():
    # sorted: a@0, d@50, e@50(logout), f@50 -> d joins, logout e ends, f starts new
    events = [ev("a", 0), ev("e", 50, "logout"), ev("f", 50), ev("d", 50)]
    assert sessions(events) == [
        S(0, 50, ["a", "d", "e"], "logout"),
        S(50, 50, ["f"], "eof"),
    ]


def test_logout_beyond_gap_opens_its_own_session():
    events = [ev("a", 0), ev("b", 500, "logout")]
    assert sessions(events) == [
        S(0, 0, ["a"], "gap"),
        S(500, 500, ["b"], "logout"),
    ]


def test_two_consecutive_logouts_are_two_sessions():
    events = [ev("a", 0, "logout"), ev("b", 1, "logout")]
    assert sessions(events) == [
        S(0, 0, ["a"], "logout"),
        S(1, 1, ["b"], "logout"),
    ]


def test_login_after_logout_starts_new_session():
    events = [ev("a", 0, "login"), ev("b", 10, "logout"), ev("c", 20, "login"), ev("d", 30)]
    assert sessions(events) == [
        S(0, 10, ["a", "b"], "logout"),
        S(20, 30, ["c", "d"], "eof"),
    ]


# ---------------------------------------------------------------- disorder and lateness
def test_out_of_order_within_lateness_same_as_sorted():
    arrival = [ev("c", 150), ev("a", 0), ev("e", 400), ev("b", 100), ev("d", 300)]
    # lateness 300: max before a is 150, 0 >= 150-300; max before b/d is 400, 100/300 >= 100 (b exactly on the bound)
    result, late = reference_sessions(arrival, GAP, 300)
    assert late == []
    # final watermark = 400 - 300 = 100; sorted: a0 b100 c150 | d300 e400 (a->b exactly GAP)
    expected = [S(0, 150, ["a", "b", "c"], "gap"), S(300, 400, ["d", "e"], "eof")]
    assert result == expected
    assert sorted_reference_sessions(arrival, GAP, 300) == (expected, [])
    in_order = sorted(arrival, key=lambda e: (e["ts"], e["event_id"]))
    assert reference_sessions(in_order, GAP, 300) == (expected, [])
    # with lateness 200, b (100 < 400 - 200) would be late instead
    assert reference_sessions(arrival, GAP, 200)[1] == [ev("b", 100)]


def test_sorted_reference_default_lateness_zero_moves_final_watermark():
    arrival = [ev("b", 300, user="u2"), ev("a", 100)]
    # lateness 250: a (100 >= 300-250) is not late; wm 50, not > 100+100 -> eof
    assert reference_sessions(arrival, GAP, 250)[0][0].close_reason == "eof"
    assert sorted_reference_sessions(arrival, GAP)[0][0].close_reason == "gap"  # wm 300 > 200


def test_event_exactly_at_lateness_bound_is_not_late():
    arrival = [ev("a", 1000), ev("b", 900)]  # 900 < 1000 - 100 is false
    result, late = reference_sessions(arrival, GAP, 100)
    assert late == []
    assert result == [S(900, 1000, ["b", "a"], "eof")]


def test_event_strictly_beyond_lateness_is_late():
    arrival = [ev("a", 1000), ev("b", 899)]  # 899 < 900
    result, late = reference_sessions(arrival, GAP, 100)
    assert late == [ev("b", 899)]
    assert result == [S(1000, 1000, ["a"], "eof")]


def test_late_events_returned_in_arrival_order_and_any_user():
    arrival = [ev("a", 1000), ev("z", 5, user="u2"), ev("y", 3), ev("b", 1010)]
    result, late = reference_sessions(arrival, GAP, 10)
    assert late == [ev("z", 5, user="u2"), ev("y", 3)]
    assert result == [S(1000, 1010, ["a", "b"], "eof")]


def test_lateness_uses_max_over_all_users():
    arrival = [ev("x", 500, user="u2"), ev("a", 100)]  # 100 < 500 - 300
    result, late = reference_sessions(arrival, GAP, 300)
    assert late == [ev("a", 100)]
    assert result == [S(500, 500, ["x"], "eof", user="u2")]


def test_lateness_zero_any_decrease_is_late():
    arrival = [ev("a", 10), ev("b", 10), ev("c", 9)]
    result, late = reference_sessions(arrival, GAP, 0)
    assert late == [ev("c", 9)]
    assert result == [S(10, 10, ["a", "b"], "eof")]


def test_dropped_duplicate_still_raises_max_ts():
    # second "d" is dropped as a duplicate, but its ts 1000 counts for max_ts
    arrival = [ev("d", 0), ev("d", 1000), ev("x", 850)]
    result, late = reference_sessions(arrival, GAP, 100)
    assert late == [ev("x", 850)]
    # final watermark = 1000 - 100 = 900 > 0 + 100 -> gap
    assert result == [S(0, 0, ["d"], "gap")]


def test_bridging_event_merges_two_sessions():
    without = [ev("a", 0), ev("c", 200)]
    assert sessions(without) == [S(0, 0, ["a"], "gap"), S(200, 200, ["c"], "eof")]
    with_bridge = [ev("a", 0), ev("c", 200), ev("b", 100)]  # b arrives last, within lateness
    result, late = reference_sessions(with_bridge, GAP, 100)
    assert late == []
    assert result == [S(0, 200, ["a", "b", "c"], "eof")]


def test_displaced_within():
    arrival = [ev("a", 1000), ev("b", 900), ev("c", 1200), ev("d", 1100)]
    assert displaced_within(arrival, 100) is True
    assert displaced_within(arrival, 99) is False
    assert displaced_within([], 0) is True
    assert displaced_within([ev("a", 1), ev("b", 1), ev("c", 2)], 0) is True


# ---------------------------------------------------------------- deduplication
def test_duplicate_event_id_ignored_first_arrival_wins():
    arrival = [ev("a", 0), ev("b", 50), ev("b", 80, "logout"), ev("c", 90)]
    # second "b" (the logout) is dropped; so no logout
    assert sessions(arrival) == [S(0, 90, ["a", "b", "c"], "eof")]


def test_duplicate_first_arrival_wins_even_if_later_ts_smaller():
    arrival = [ev("a", 0), ev("x", 300), ev("x", 50)]
    result, late = reference_sessions(arrival, GAP, 300)
    assert late == []
    # kept x@300; a alone -> gap (followed), x eof (wm = 300-300 = 0)
    assert result == [S(0, 0, ["a"], "gap"), S(300, 300, ["x"], "eof")]


def test_same_event_id_different_users_both_kept():
    arrival = [ev("a", 0, user="u1"), ev("a", 0, user="u2")]
    assert sessions(arrival) == [
        S(0, 0, ["a"], "eof", user="u1"),
        S(0, 0, ["a"], "eof", user="u2"),
    ]


def test_dedup_only_among_non_late_events():
    # first "d" is late, so the second (on-time) "d" is the one kept
    arrival = [ev("a", 1000), ev("d", 0), ev("d", 950)]
    result, late = reference_sessions(arrival, GAP, 100)
    assert late == [ev("d", 0)]
    assert result == [S(950, 1000, ["d", "a"], "eof")]


# ---------------------------------------------------------------- close reasons
def test_close_reason_final_watermark_strict_lateness_zero():
    # u1 ends at 1000, gap 100: gap iff watermark > 1100
    at_bound = [ev("a", 1000), ev("x", 1100, user="u2")]
    assert sessions(at_bound)[0] == S(1000, 1000, ["a"], "eof")
    beyond = [ev("a", 1000), ev("x", 1101, user="u2")]
    assert sessions(beyond)[0] == S(1000, 1000, ["a"], "gap")


def test_close_reason_final_watermark_strict_with_lateness():
    at_bound = [ev("a", 1000), ev("x", 1150, user="u2")]  # wm 1100
    assert reference_sessions(at_bound, GAP, 50)[0][0].close_reason == "eof"
    beyond = [ev("a", 1000), ev("x", 1151, user="u2")]  # wm 1101
    assert reference_sessions(beyond, GAP, 50)[0][0].close_reason == "gap"


def test_close_reason_gap_when_followed_even_if_watermark_low():
    # big lateness -> wm negative, but first session is followed by another
    result, _ = reference_sessions([ev("a", 0), ev("b", 500)], GAP, 10_000)
    assert result == [S(0, 0, ["a"], "gap"), S(500, 500, ["b"], "eof")]


def test_close_reason_logout_wins_over_gap():
    events = [ev("a", 0, "logout"), ev("x", 5000, user="u2")]
    assert sessions(events)[0] == S(0, 0, ["a"], "logout")


# ---------------------------------------------------------------- cart and rules
def test_abandoned_cart_starts_promotion_default_quantity_one():
    events = [add("a", 0, "p1"), remove("b", 10, "p1", 1), add("c", 20, "p1")]
    assert sessions(events) == [START(0, 20, ["a", "b", "c"], "eof", ["p1"])]


def test_cart_clamped_at_zero():
    # add 2, remove 5 -> 0 (not -3), add 1 -> 1
    events = [add("a", 0, "p1", 2), remove("b", 10, "p1", 5), add("c", 20, "p1", 1)]
    assert sessions(events) == [START(0, 20, ["a", "b", "c"], "eof", ["p1"])]


def test_remove_of_absent_product_does_nothing():
    events = [remove("a", 0, "p1", 3), add("b", 10, "p1", 1)]
    assert sessions(events) == [START(0, 10, ["a", "b"], "eof", ["p1"])]


def test_cart_emptied_by_removes_gives_no_action():
    events = [add("a", 0, "p1", 2), remove("b", 10, "p1"), remove("c", 20, "p1")]
    assert sessions(events) == [S(0, 20, ["a", "b", "c"], "eof")]


def test_promoted_products_sorted_and_only_positive():
    events = [add("a", 0, "p3"), add("b", 1, "p1", 2), add("c", 2, "p2"), remove("d", 3, "p2")]
    assert sessions(events) == [START(0, 3, ["a", "b", "c", "d"], "eof", ["p1", "p3"])]


def test_cart_follows_sorted_order_not_arrival():
    # arrival: remove then add, but sorted order is add@0 then remove@10 -> empty cart
    arrival = [remove("b", 10, "p1"), add("a", 0, "p1")]
    result, late = reference_sessions(arrival, GAP, 10)
    assert late == []
    assert result == [S(0, 10, ["a", "b"], "eof")]


def test_payment_clears_cart_and_stops():
    events = [add("a", 0, "p1"), ev("b", 10, "checkout_start"), ev("c", 20, "payment_complete")]
    assert sessions(events) == [STOP(0, 20, ["a", "b", "c"], "eof")]


def test_payment_then_new_add_still_stops():
    events = [add("a", 0, "p1"), ev("b", 10, "payment_complete"), add("c", 20, "p2")]
    assert sessions(events) == [STOP(0, 20, ["a", "b", "c"], "eof")]


def test_payment_without_cart_stops():
    assert sessions([ev("a", 0, "payment_complete")]) == [STOP(0, 0, ["a"], "eof")]


def test_checkout_start_alone_does_not_clear_cart():
    events = [add("a", 0, "p1"), ev("b", 10, "checkout_start")]
    assert sessions(events) == [START(0, 10, ["a", "b"], "eof", ["p1"])]


def test_cart_is_per_session():
    # session 1 leaves p1 in the cart; session 2 pays; session 3 has only a remove
    events = [
        add("a", 0, "p1"),
        ev("b", 500, "payment_complete"),
        remove("c", 1000, "p1"),
    ]
    assert sessions(events) == [
        START(0, 0, ["a"], "gap", ["p1"]),
        STOP(500, 500, ["b"], "gap"),
        S(1000, 1000, ["c"], "eof"),
    ]


def test_cart_in_logout_session():
    events = [add("a", 0, "p1"), ev("b", 10, "logout"), add("c", 20, "p2")]
    assert sessions(events) == [
        START(0, 10, ["a", "b"], "logout", ["p1"]),
        START(20, 20, ["c"], "eof", ["p2"]),
    ]


# ---------------------------------------------------------------- multiple users
def test_multiple_users_interleaved():
    arrival = [
        ev("b1", 0, "login", user="bob"),
        add("a1", 5, "p9", user="alice"),
        add("b2", 50, "p1", user="bob"),
        ev("a2", 60, "payment_complete", user="alice"),
        ev("b3", 200, user="bob"),
        ev("a3", 210, "logout", user="alice"),
        ev("c1", 400, user="carol"),
    ]
    # final watermark = 400; alice: a1,a2 (gap 55) then a3 (gap 150) -> two sessions
    # bob: b1,b2 then b3 (gap 150); b3 end 200, 400 > 300 -> gap
    assert sessions(arrival) == [
        STOP(5, 60, ["a1", "a2"], "gap", user="alice"),
        S(210, 210, ["a3"], "logout", user="alice"),
        START(0, 50, ["b1", "b2"], "gap", ["p1"], user="bob"),
        S(200, 200, ["b3"], "gap", user="bob"),
        S(400, 400, ["c1"], "eof", user="carol"),
    ]


def test_users_do_not_share_sessions_or_carts():
    arrival = [add("a", 0, "p1", user="u1"), ev("b", 1, "payment_complete", user="u2")]
    assert sessions(arrival) == [
        START(0, 0, ["a"], "eof", ["p1"], user="u1"),
        STOP(1, 1, ["b"], "eof", user="u2"),
    ]


def test_out_of_order_multi_user_equals_sorted():
    arrival = [
        ev("u2-b", 120, user="u2"),
        ev("u1-a", 0),
        add("u1-c", 90, "p1"),
        ev("u2-a", 30, user="u2"),
        ev("u1-b", 60, "logout"),
    ]
    assert displaced_within(arrival, 120)
    result, late = reference_sessions(arrival, GAP, 120)
    assert late == []
    # wm = 0; u1: a0, b60 logout | c90
    expected = [
        S(0, 60, ["u1-a", "u1-b"], "logout"),
        START(90, 90, ["u1-c"], "eof", ["p1"]),
        S(30, 120, ["u2-a", "u2-b"], "eof", user="u2"),
    ]
    assert result == expected
    assert sorted_reference_sessions(arrival, GAP, 120) == (expected, [])
