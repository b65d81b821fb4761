"""Event-time sessions of one user shard: the specification the compiled kernel must match.

The rules, as the README states them:

* A session is a maximal run of a user's events, in (ts, event_id) order, with no gap longer than
  `gap_ms`; a `logout` belongs to the session it ends, and the user's next event opens another.
* The watermark W promises that no event with ts < W is still to come; an event with ts < W on
  arrival is late (it goes to the late output, and changes nothing).
* A user's events below W can no longer be preceded by anything, so they are folded into the
  user's open `Session`s; events at or above W wait in `pending`, sorted.
* A session closes once W passes its logout ("logout") or its end + gap ("gap"). At the end of a
  bounded input everything closes: a logout or a proven gap keeps its reason, the rest is "eof".
* Before an arriving event joins its user, whatever W has already closed is closed; then a
  repeated `event_id` of the user's open sessions or pending events is a producer retry and is
  dropped, whatever its timestamp, even one behind W (the first arrival wins). Only then is an
  event behind W late.

Each user has a timer: a lower bound of the W after which something of the user can close. When
W passes it, the user is looked at again, closes what it can and is rescheduled at its exact
deadline; a user with nothing open is dropped.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from promotion.events import (
    ADD_TO_CART,
    EVENT_TYPES,
    LOGOUT,
    PAYMENT_COMPLETE,
    PRODUCT_VIEW,
    REMOVE_FROM_CART,
    TYPE_INDEX,
    Event,
)
from promotion.watermark import NO_TIME, Watermark

GAP: Final = "gap"
LOGOUT_REASON: Final = "logout"
EOF: Final = "eof"
#: Beyond every timestamp: at the end of input, every pending event is below it.
END_OF_TIME: Final = 2**63


@dataclass(slots=True)
class Session:
    """What a session remembers of its events, folded in (ts, event_id) order."""

    start: int  # ts of the first event
    first_event_id: str  # with `start`, the session's identity
    end: int  # ts of the last event so far
    events: int = 0
    logged_out: bool = False
    type_counts: list[int] = field(default_factory=lambda: [0] * len(EVENT_TYPES))
    cart: dict[str, int] = field(default_factory=dict)  # product -> quantity > 0
    prices: dict[str, float] = field(default_factory=dict)  # product -> last price seen
    viewed: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)  # of views and adds
    event_ids: set[str] = field(default_factory=set)  # so that retries are recognised

    @classmethod
    def starting_with(cls, event: Event) -> Session:
        session = cls(event.ts, event.event_id, event.ts)
        session.add(event)
        return session

    def takes(self, event: Event, gap_ms: int) -> bool:
        """Whether an event that sorts after this session's events belongs to it."""
        return not self.logged_out and event.ts - self.end <= gap_ms

    def add(self, event: Event) -> None:
        """Fold in an event that sorts after every event already in the session."""
        self.end = event.ts
        self.events += 1
        self.event_ids.add(event.event_id)
        self.type_counts[TYPE_INDEX[event.type]] += 1
        kind, product = event.type, event.product_id
        if kind == PRODUCT_VIEW:
            self.viewed.add(product)  # type: ignore[arg-type]
        elif kind == ADD_TO_CART:
            self.cart[product] = self.cart.get(product, 0) + event.quantity  # type: ignore[index]
            if event.price is not None:
                self.prices[product] = event.price  # type: ignore[index]
        elif kind == REMOVE_FROM_CART:
            left = self.cart.get(product, 0) - event.quantity  # type: ignore[arg-type]
            if left > 0:
                self.cart[product] = left  # type: ignore[index]
            else:
                self.cart.pop(product, None)  # type: ignore[arg-type]
        elif kind == PAYMENT_COMPLETE:
            self.cart.clear()  # everything in the cart was purchased
        elif kind == LOGOUT:
            self.logged_out = True
        if kind in (PRODUCT_VIEW, ADD_TO_CART) and event.category is not None:
            self.categories.add(event.category)

    def closes_at(self, gap_ms: int) -> int:
        """The watermark value this session must pass to close, if nothing joins it."""
        return self.end if self.logged_out else self.end + gap_ms


class ClosedSession(NamedTuple):
    user_id: str
    session: Session
    close_reason: str  # "gap" | "logout" | "eof"


def ordered(closed: list[ClosedSession], gap_ms: int) -> list[ClosedSession]:
    """`closed` in emission order: by closing time, user, start and first event."""

    def key(item: ClosedSession) -> tuple:
        s = item.session
        return (s.closes_at(gap_ms), item.user_id, s.start, s.first_event_id)

    return sorted(closed, key=key)


@dataclass(slots=True)
class UserSessions:
    """One user's open state."""

    open: list[Session] = field(default_factory=list)  # from events below the watermark
    pending: list[Event] = field(default_factory=list)  # at or above it, by (ts, event_id)
    timer: int | None = None  # the earliest deadline scheduled for this user

    def knows(self, event_id: str) -> bool:
        return any(event_id in s.event_ids for s in self.open) or any(
            e.event_id == event_id for e in self.pending
        )

    def settle(self, watermark: int, gap_ms: int) -> int:
        """Fold pending events below the watermark into sessions; returns sessions started."""
        opened = 0
        while self.pending and self.pending[0].ts < watermark:
            event = self.pending.pop(0)
            if self.open and self.open[-1].takes(event, gap_ms):
                self.open[-1].add(event)
            else:
                self.open.append(Session.starting_with(event))
                opened += 1
        return opened

    def close_ready(self, watermark: int, gap_ms: int, user_id: str) -> list[ClosedSession]:
        """Close the sessions the watermark has passed (only the last open one can be open)."""
        closed = []
        while self.open:
            session = self.open[0]
            if session.logged_out:
                reason = LOGOUT_REASON
            elif session.end + gap_ms < watermark:
                reason = GAP
            else:
                break
            closed.append(ClosedSession(user_id, self.open.pop(0), reason))
        return closed

    def close_all(self, watermark: int, gap_ms: int, user_id: str) -> list[ClosedSession]:
        """End of input (pending events settled): logout and proven gaps keep their reason,
        the rest is eof."""
        closed = []
        last = len(self.open) - 1
        for i, session in enumerate(self.open):
            if session.logged_out:
                reason = LOGOUT_REASON
            elif i < last or session.end + gap_ms < watermark:
                reason = GAP
            else:
                reason = EOF
            closed.append(ClosedSession(user_id, session, reason))
        self.open.clear()
        return closed

    def deadline(self, gap_ms: int) -> int | None:
        """The watermark value after which the first session closes if nothing else arrives
        (None: nothing open). Called once the user's closable sessions are closed."""
        if self.open:
            first = self.open[0]
            if first.logged_out:
                return first.end
            end, rest = first.end, self.pending
        elif self.pending:
            first_event = self.pending[0]
            if first_event.type == LOGOUT:
                return first_event.ts
            end, rest = first_event.ts, self.pending[1:]
        else:
            return None
        for event in rest:
            if event.ts - end > gap_ms:
                break
            end = event.ts
            if event.type == LOGOUT:
                return end
        return end + gap_ms


class LateEvent(NamedTuple):
    event: Event
    watermark: int
    partition: str


class BatchResult(NamedTuple):
    closed: list[ClosedSession]
    late: list[LateEvent]


class ShardSessions:
    """The Python engine: the open sessions of one shard's users, and its watermark."""

    def __init__(
        self, gap_ms: int, lateness_ms: int, idle_timeout_ms: int, partitions: Iterable[str],
        now_ms: int,
    ) -> None:
        self.gap_ms = gap_ms
        self.lateness_ms = lateness_ms
        self.watermark = Watermark(partitions, lateness_ms, idle_timeout_ms, now_ms)
        self.users: dict[str, UserSessions] = {}
        self._timers: list[tuple[int, str]] = []  # heap of (deadline, user_id)
        #: Sessions started, and repeated events dropped, since `take_counts`.
        self._opened = 0
        self._duplicates = 0

    @property
    def watermark_value(self) -> int:
        return self.watermark.value

    @property
    def open_users(self) -> int:
        return len(self.users)

    def take_counts(self) -> tuple[int, int]:
        """(sessions started, repeats dropped) since the last call."""
        counts = (self._opened, self._duplicates)
        self._opened = self._duplicates = 0
        return counts

    # -- input ---------------------------------------------------------------------------------

    def on_batch(
        self, partition: str, events: list[Event], highs_before: list[int], batch_high: int,
        now_ms: int, final: bool = False,
    ) -> BatchResult:
        """This shard's events of one batch of one input partition, in partition order.

        `highs_before[i]` is the partition's newest ts among the batch's records before event i
        (every shard's), so lateness is decided exactly as if the shard saw the whole partition.
        """
        wm = self.watermark
        closed: list[ClosedSession] = []
        late: list[LateEvent] = []
        if events:
            floor = wm.floor_excluding(partition, now_ms)
            high = wm.high.get(partition, NO_TIME)
            value = max(wm.value, min(high, floor) - self.lateness_ms)
            for event, before in zip(events, highs_before):
                if before > high:
                    high = before
                    value = max(value, min(high, floor) - self.lateness_ms)
                self._arrive(event, value, partition, closed, late)
            wm.value = value
            wm.raise_high(partition, high)
        wm.end_batch(partition, batch_high, now_ms, final)
        closed += self._fire_timers()
        return BatchResult(closed, late)

    def _arrive(
        self, event: Event, watermark: int, partition: str, closed: list[ClosedSession],
        late: list[LateEvent],
    ) -> None:
        """A repeat of an event the user still has open is dropped, even behind the watermark
        (a producer retry, not a late event); otherwise an event behind it is late."""
        user_id = event.user_id
        user = self.users.get(user_id)
        if user is not None:
            closed += self._refresh(user_id, user, watermark)
            if user.knows(event.event_id):
                self._duplicates += 1
                return
        if event.ts < watermark:
            late.append(LateEvent(event, watermark, partition))
            return
        if user is None:
            user = self.users[user_id] = UserSessions()
        insort(user.pending, event)
        self._schedule(user_id, user)

    def on_tick(self, now_ms: int) -> list[ClosedSession]:
        """Wall-clock progress: idle partitions stop holding back; all idle moves time on."""
        self.watermark.advance(now_ms)
        return self._fire_timers()

    def on_eof(self) -> list[ClosedSession]:
        """End of a bounded input: close every open session."""
        closed = []
        for user_id, user in self.users.items():
            self._opened += user.settle(END_OF_TIME, self.gap_ms)
            closed += user.close_all(self.watermark.value, self.gap_ms, user_id)
        self.users.clear()
        self._timers.clear()
        return closed

    # -- timers --------------------------------------------------------------------------------

    def _refresh(self, user_id: str, user: UserSessions, watermark: int) -> list[ClosedSession]:
        """Settle and close what the watermark allows."""
        self._opened += user.settle(watermark, self.gap_ms)
        return user.close_ready(watermark, self.gap_ms, user_id)

    def _schedule(self, user_id: str, user: UserSessions) -> None:
        """Keep the user's timer at or below its exact deadline (a later one keeps the earlier
        timer, which reschedules exactly when it fires); drop a user with nothing open."""
        due = user.deadline(self.gap_ms)
        if due is None:
            del self.users[user_id]
        elif user.timer is None or due < user.timer:
            user.timer = due
            heapq.heappush(self._timers, (due, user_id))

    def _fire_timers(self) -> list[ClosedSession]:
        closed: list[ClosedSession] = []
        watermark = self.watermark.value
        timers = self._timers
        while timers and timers[0][0] < watermark:
            due, user_id = heapq.heappop(timers)
            user = self.users.get(user_id)
            if user is None or user.timer != due:
                continue  # stale: the user was dropped, or has an earlier timer that fired
            user.timer = None
            closed += self._refresh(user_id, user, watermark)
            self._schedule(user_id, user)
        return closed

    # -- recovery ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Watermark, partition marks and users as format-7 plain data (promotion.snapshot)."""
        return {
            "watermark": self.watermark.value,
            "high": dict(self.watermark.high),
            "users": {uid: _user_state(user) for uid, user in self.users.items()},
        }

    def load(self, state: dict[str, Any], now_ms: int) -> None:
        """Adopt a format-7 document's watermark and users."""
        self.watermark.restore(state["high"], state["watermark"], now_ms)
        for user_id, data in state["users"].items():
            user = UserSessions(
                [_session_of(s) for s in data["sessions"]],
                [Event(e[0], e[1], user_id, *e[2:]) for e in data["pending"]],
            )
            user.pending.sort()
            self.users[user_id] = user
            user.settle(self.watermark.value, self.gap_ms)  # older formats held these unfolded
            self._schedule(user_id, user)


def _user_state(user: UserSessions) -> dict[str, Any]:
    return {
        "sessions": [_session_state(s) for s in user.open],
        "pending": [[e.ts, e.event_id, e.type, e.source, e.product_id, e.category, e.price,
                     e.quantity] for e in user.pending],
    }


def _session_state(s: Session) -> dict[str, Any]:
    return {
        "start": s.start, "first_event_id": s.first_event_id, "end": s.end,
        "events": s.events, "logged_out": s.logged_out, "type_counts": s.type_counts,
        "cart": s.cart, "prices": s.prices, "viewed": sorted(s.viewed),
        "categories": sorted(s.categories), "event_ids": sorted(s.event_ids),
    }


def _session_of(data: dict[str, Any]) -> Session:
    return Session(
        data["start"], data["first_event_id"], data["end"], data["events"], data["logged_out"],
        list(data["type_counts"]), dict(data["cart"]), dict(data["prices"]), set(data["viewed"]),
        set(data["categories"]), set(data["event_ids"]),
    )
