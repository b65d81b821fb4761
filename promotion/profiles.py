"""Cross-session facts about a user, kept between sessions with a time-to-live in event time.

A `Profile` holds:
* `last_ts`: the end of the user's latest session (the TTL counts from it);
* `sessions`: sessions closed within the TTL window (reset when the profile expires);
* `purchases`: event times of sessions with a payment, within the last 30 days;
* `interest`: {category: score}, an exponential moving average in event time (half-life 7 days) of
  how many sessions touched the category, like the seed talk's recommender. Scores are stored as
  of `interest_ts`: the score at time t is the stored one times 0.5 ** ((t - interest_ts) / half-
  life). A session adds its weight as of `interest_ts`, so recording one never rescales them all.
Rules see the profile as it was *before* the session being decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

DAY_MS: Final = 86_400_000
PURCHASE_WINDOW_MS: Final = 30 * DAY_MS
INTEREST_HALF_LIFE_MS: Final = 7 * DAY_MS
TOP_CATEGORIES: Final = 3


class ProfileFacts(NamedTuple):
    sessions: int  # earlier sessions still within the TTL
    purchases_30d: int  # earlier sessions with a payment in the 30 days before this session
    days_since_purchase: float  # -1 when there was none in the window
    top_categories: frozenset[str]  # up to 3 categories with the highest interest


NO_PROFILE: Final = ProfileFacts(0, 0, -1.0, frozenset())


@dataclass(slots=True)
class Profile:
    last_ts: int = 0
    sessions: int = 0
    purchases: list[int] = field(default_factory=list)
    interest: dict[str, float] = field(default_factory=dict)
    interest_ts: int = 0


def new_profile() -> Profile:
    return Profile()


class LazyProfile:
    """ProfileFacts computed only if a rule asks: most rule sets never look at the profile.

    It keeps references to the profile's purchase list and interest dict of the moment;
    `record_session` replaces (never mutates) them, so later sessions cannot leak in.
    """

    __slots__ = ("sessions", "_purchases", "_interest", "_interest_ts", "_at", "_facts")

    def __init__(self, profile: Profile, at_ms: int) -> None:
        self.sessions: int = profile.sessions
        self._purchases = profile.purchases
        self._interest = profile.interest
        self._interest_ts = profile.interest_ts
        self._at = at_ms
        self._facts: ProfileFacts | None = None

    def _computed(self) -> ProfileFacts:
        if self._facts is None:
            view = Profile(0, self.sessions, self._purchases, self._interest, self._interest_ts)
            self._facts = profile_facts(view, self._at)
        return self._facts

    @property
    def purchases_30d(self) -> int:
        return self._computed().purchases_30d

    @property
    def days_since_purchase(self) -> float:
        return self._computed().days_since_purchase

    @property
    def top_categories(self) -> frozenset[str]:
        return self._computed().top_categories


def profile_facts(profile: Profile | None, at_ms: int) -> ProfileFacts:
    """The profile as seen by a session that starts at `at_ms`."""
    if profile is None:
        return NO_PROFILE
    recent = [ts for ts in profile.purchases if at_ms - ts <= PURCHASE_WINDOW_MS]
    since = (at_ms - max(recent)) / DAY_MS if recent else -1.0
    interest = _decayed(profile, at_ms)
    top = sorted(interest, key=lambda c: (-interest[c], c))[:TOP_CATEGORIES]
    return ProfileFacts(profile.sessions, len(recent), round(since, 3), frozenset(top))


#: Past this many half-lives between `interest_ts` and a new session, scores are rebased to it.
_REBASE_HALF_LIVES: Final = 64


def record_session(profile: Profile, end_ms: int, paid: bool, categories: frozenset[str]) -> None:
    """Fold a closed session into the profile (sessions close in event-time order per user)."""
    if end_ms > profile.last_ts:
        profile.last_ts = end_ms
    profile.sessions += 1
    if paid or profile.purchases:  # replaced, never mutated: LazyProfile may hold the old one
        purchases = [ts for ts in profile.purchases if end_ms - ts <= PURCHASE_WINDOW_MS]
        if paid:
            purchases.append(end_ms)
        profile.purchases = purchases
    if not categories:
        return
    interest = profile.interest
    if not interest:
        interest = {}
        profile.interest_ts = end_ms
        weight = 1.0
    else:
        half_lives = (end_ms - profile.interest_ts) / INTEREST_HALF_LIFE_MS
        if half_lives > _REBASE_HALF_LIVES:
            interest = _decayed(profile, end_ms)
            profile.interest_ts = end_ms
            weight = 1.0
        else:
            interest = dict(interest)  # replaced, never mutated (see LazyProfile)
            weight = 2.0**half_lives
    for category in categories:
        interest[category] = interest.get(category, 0.0) + weight
    if len(interest) > 16:  # forget faded interests (below 0.05 now), keep the profile small
        floor = 0.05 * weight
        interest = {c: s for c, s in interest.items() if s >= floor}
    profile.interest = interest


def _decayed(profile: Profile, at_ms: int) -> dict[str, float]:
    """The interest scores as of `at_ms`."""
    elapsed = at_ms - profile.interest_ts
    if elapsed <= 0:
        return dict(profile.interest)
    factor = 0.5 ** (elapsed / INTEREST_HALF_LIFE_MS)
    return {c: s * factor for c, s in profile.interest.items()}
