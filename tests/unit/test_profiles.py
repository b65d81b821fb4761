"""Profile interest is an exponential moving average in event time, however it is stored."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from promotion.profiles import (
    DAY_MS,
    INTEREST_HALF_LIFE_MS,
    _decayed,
    new_profile,
    profile_facts,
    record_session,
)

CATEGORIES = ["books", "toys", "garden", "music"]

sessions = st.lists(
    st.tuples(st.integers(0, 600 * DAY_MS), st.sets(st.sampled_from(CATEGORIES), max_size=3)),
    max_size=30,
).map(lambda items: sorted(items, key=lambda item: item[0]))


def _expected(history: list[tuple[int, set[str]]], at_ms: int) -> dict[str, float]:
    """Sum over sessions that touched the category of 0.5 ** (age / half-life)."""
    scores: dict[str, float] = {}
    for end, categories in history:
        for category in categories:
            weight = 0.5 ** ((at_ms - end) / INTEREST_HALF_LIFE_MS)
            scores[category] = scores.get(category, 0.0) + weight
    return scores


@given(sessions, st.integers(0, 30 * DAY_MS))
def test_interest_is_the_decayed_count_of_sessions(history, later_ms) -> None:
    profile = new_profile()
    for end, categories in history:
        record_session(profile, end, paid=False, categories=frozenset(categories))
    at = (history[-1][0] if history else 0) + later_ms
    got = _decayed(profile, at) if history else {}
    expected = _expected(history, at)
    assert got.keys() == {c for c, s in expected.items()}
    for category, score in expected.items():
        assert math.isclose(got[category], score, rel_tol=1e-9, abs_tol=1e-300)


def test_scores_survive_years_between_sessions() -> None:
    """Far-apart sessions rebase the stored scores instead of overflowing them."""
    profile = new_profile()
    record_session(profile, 0, paid=False, categories=frozenset({"books"}))
    record_session(profile, 3 * 365 * DAY_MS, paid=False, categories=frozenset({"toys"}))
    facts = profile_facts(profile, 3 * 365 * DAY_MS + 1)
    assert facts.top_categories == {"toys", "books"}
    scores = _decayed(profile, 3 * 365 * DAY_MS)
    assert math.isclose(scores["toys"], 1.0) and scores["books"] < 1e-40


def test_recording_a_session_never_mutates_what_an_earlier_session_saw() -> None:
    profile = new_profile()
    record_session(profile, 0, paid=False, categories=frozenset({"books"}))
    seen = profile.interest
    before = dict(seen)
    record_session(profile, DAY_MS, paid=False, categories=frozenset({"books", "toys"}))
    assert seen == before and profile.interest is not seen
