"""One user's open sessions: the event-time session state machine.

A user's state is one plain list `[deadline, settled, *pending]`:

* `pending` (from index 2 on) holds raw events (plain tuples) sorted by (ts, event_id) whose ts is
  not yet below the watermark. They can still be reordered by a late-arriving event, split by a
  late logout or bridged.
* `settled` is None or a list of accumulators of sessions built from events below the watermark.
  Every event still to come sorts after all of them, so they only ever grow at the end, and are
  closed once the watermark passes their logout or their end + gap.
* `deadline` is the watermark value after which something of this user can close (see `deadline`).

A user whose only state is one pending event is stored as that event tuple alone (a "light"
user): its deadline follows from the event (`light_deadline`), and `promote` turns it into the list
form when anything more happens. One list per user otherwise, and raw events only inside the
lateness window, keep state per open session small.
"""

from __future__ import annotations

from bisect import insort
from typing import Final, NamedTuple

from promotion.events import EVENT_ID, LOGOUT, TS, TYPE
from promotion.facts import END, ENDED, IDS, fold, has_event, new_accumulator

DEADLINE: Final = 0
SETTLED: Final = 1
PENDING: Final = 2  # index of the first pending event

#: DEADLINE value of a user with no timer scheduled.
UNSCHEDULED: Final = 2**62

GAP: Final = "gap"
LOGOUT_REASON: Final = "logout"
EOF: Final = "eof"


class ClosedSession(NamedTuple):
    user_id: str
    accumulator: list
    close_reason: str


def light_deadline(event: tuple, gap_ms: int) -> int:
    """The deadline of a user whose whole state is this one pending event."""
    return event[TS] if event[TYPE] == LOGOUT else event[TS] + gap_ms


def promote(event: tuple, gap_ms: int) -> list:
    """A light user (one pending event) in the list form, keeping its scheduled deadline."""
    return [light_deadline(event, gap_ms), None, event]


DUPLICATE: Final = 0  # add_event results
APPENDED: Final = 1  # sorts after every pending event: can only delay the user's deadline
INSERTED: Final = 2  # out of order: may move the deadline earlier


def add_event(user: list, event: tuple) -> int:
    """Insert an on-time event; DUPLICATE if its event_id is already in one of the user's open
    sessions (a producer retry, even with another timestamp)."""
    settled = user[SETTLED]
    if settled:
        event_id = event[EVENT_ID]
        for acc in settled:
            if has_event(acc, event_id):
                return DUPLICATE
    size = len(user)
    if size > PENDING:
        event_id = event[EVENT_ID]
        for i in range(PENDING, size):
            if user[i][EVENT_ID] == event_id:
                return DUPLICATE
        if event > user[-1]:
            user.append(event)
            return APPENDED
        insort(user, event, PENDING)
        return INSERTED
    user.append(event)
    return APPENDED


def settle(user: list, watermark: int, gap_ms: int) -> int:
    """Fold pending events below the watermark into settled sessions, in event-time order.

    Returns how many sessions this started.
    """
    size = len(user)
    if size == PENDING or user[PENDING][TS] >= watermark:
        return 0
    settled = user[SETTLED]
    if settled is None:
        settled = user[SETTLED] = []
    last = settled[-1] if settled else None
    end = PENDING
    opened = 0
    while end < size:
        event = user[end]
        if event[TS] >= watermark:
            break
        end += 1
        if last is not None and not last[ENDED] and event[TS] - last[END] <= gap_ms:
            fold(last, event)
        else:
            last = new_accumulator(event)
            settled.append(last)
            opened += 1
    del user[PENDING:end]
    return opened


def close_ready(user: list, watermark: int, gap_ms: int, out: list, user_id: str) -> None:
    """Append a ClosedSession for settled sessions that can no longer change."""
    settled = user[SETTLED]
    if not settled:
        return
    while settled:
        acc = settled[0]
        if acc[ENDED]:
            reason = LOGOUT_REASON
        elif acc[END] + gap_ms < watermark:
            reason = GAP
        else:
            return
        out.append(ClosedSession(user_id, settled.pop(0), reason))
    user[SETTLED] = None


def deadline(user: list, gap_ms: int) -> int | None:
    """The watermark value after which the user's first session closes if nothing else arrives.

    None when the user has nothing open. Called after `settle` and `close_ready`, so at most one
    settled session is left and every pending event is at or above the watermark.
    """
    settled = user[SETTLED]
    size = len(user)
    if settled:
        end = settled[0][END]
        i = PENDING
    elif size > PENDING:
        first = user[PENDING]
        if first[TYPE] == LOGOUT:
            return first[TS]
        end = first[TS]
        i = PENDING + 1
    else:
        return None
    while i < size:
        event = user[i]
        if event[TS] - end > gap_ms:
            break
        end = event[TS]
        if event[TYPE] == LOGOUT:
            return end
        i += 1
    return end + gap_ms


def flush(user: list, watermark: int, gap_ms: int, out: list, user_id: str) -> int:
    """Close everything at end of input: logout and proven gaps keep their reason, the rest is eof.

    Returns how many sessions settling the last pending events started.
    """
    opened = settle(user, watermark=2**63, gap_ms=gap_ms)
    settled = user[SETTLED] or []
    last = len(settled) - 1
    for i, acc in enumerate(settled):
        if acc[ENDED]:
            reason = LOGOUT_REASON
        elif i < last or acc[END] + gap_ms < watermark:
            reason = GAP
        else:
            reason = EOF
        out.append(ClosedSession(user_id, acc, reason))
    user[SETTLED] = None
    return opened


def migrate_v4(user: list | tuple) -> list | tuple:
    """Settled accumulators of snapshot v4 remembered no event ids: start with none."""
    if user.__class__ is tuple or not user[SETTLED]:
        return user
    for acc in user[SETTLED]:
        if len(acc) == IDS:
            acc.append([])
    return user


def migrate_v2(user: list) -> list:
    """[deadline, settled list, pending list] (snapshot v1/v2) -> the current layout."""
    deadline_value, settled, pending = user
    return [deadline_value, settled or None, *pending]
