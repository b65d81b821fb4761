"""One user's open sessions: the event-time session state machine.

A user's state is `[deadline, settled, pending]` (a plain list):

* `pending` holds raw events (plain tuples) sorted by (ts, event_id) whose ts is not yet below the
  watermark. They can still be reordered by a late-arriving event, split by a late logout or bridged.
* `settled` holds accumulators of sessions built from events below the watermark. Every event still
  to come sorts after all of them, so they only ever grow at the end, and are closed once the
  watermark passes their logout or their end + gap.
* `deadline` is the watermark value after which something of this user can close (see `deadline`).

Because only events inside the lateness window are kept raw, state per user stays small.
"""

from __future__ import annotations

from bisect import insort
from typing import Final, NamedTuple

from promotion.events import EVENT_ID, LOGOUT, TS, TYPE
from promotion.facts import END, ENDED, fold, new_accumulator

DEADLINE: Final = 0
SETTLED: Final = 1
PENDING: Final = 2

#: DEADLINE value of a user with no timer scheduled.
UNSCHEDULED: Final = 2**62

GAP: Final = "gap"
LOGOUT_REASON: Final = "logout"
EOF: Final = "eof"


class ClosedSession(NamedTuple):
    user_id: str
    accumulator: list
    close_reason: str


def new_user() -> list:
    return [UNSCHEDULED, [], []]


DUPLICATE: Final = 0  # add_event results
APPENDED: Final = 1  # sorts after every pending event: can only delay the user's deadline
INSERTED: Final = 2  # out of order: may move the deadline earlier


def add_event(user: list, event: tuple) -> int:
    """Insert an on-time event; DUPLICATE if its event_id is already pending (a producer retry)."""
    pending: list = user[PENDING]
    if pending:
        event_id = event[EVENT_ID]
        for other in pending:
            if other[EVENT_ID] == event_id:
                return DUPLICATE
        if event > pending[-1]:
            pending.append(event)
            return APPENDED
        insort(pending, event)
        return INSERTED
    pending.append(event)
    return APPENDED


def settle(user: list, watermark: int, gap_ms: int) -> int:
    """Fold pending events below the watermark into settled sessions, in event-time order.

    Returns how many sessions this started.
    """
    pending: list = user[PENDING]
    if not pending or pending[0][TS] >= watermark:
        return 0
    settled: list = user[SETTLED]
    n = opened = 0
    for event in pending:
        if event[TS] >= watermark:
            break
        n += 1
        last = settled[-1] if settled else None
        if last is not None and not last[ENDED] and event[TS] - last[END] <= gap_ms:
            fold(last, event)
        else:
            settled.append(new_accumulator(event))
            opened += 1
    del pending[:n]
    return opened


def close_ready(user: list, watermark: int, gap_ms: int, out: list, user_id: str) -> None:
    """Append a ClosedSession for settled sessions that can no longer change."""
    settled: list = user[SETTLED]
    while settled:
        acc = settled[0]
        if acc[ENDED]:
            reason = LOGOUT_REASON
        elif acc[END] + gap_ms < watermark:
            reason = GAP
        else:
            return
        out.append(ClosedSession(user_id, settled.pop(0), reason))


def deadline(user: list, gap_ms: int) -> int | None:
    """The watermark value after which the user's first session closes if nothing else arrives.

    None when the user has nothing open. Called after `settle` and `close_ready`, so at most one
    settled session is left and every pending event is at or above the watermark.
    """
    settled: list = user[SETTLED]
    pending: list = user[PENDING]
    if settled:
        end = settled[0][END]
    elif pending:
        first = pending[0]
        if first[TYPE] == LOGOUT:
            return first[TS]
        end = first[TS]
        pending = pending[1:]
    else:
        return None
    for event in pending:
        if event[TS] - end > gap_ms:
            break
        end = event[TS]
        if event[TYPE] == LOGOUT:
            return end
    return end + gap_ms


def flush(user: list, watermark: int, gap_ms: int, out: list, user_id: str) -> int:
    """Close everything at end of input: logout and proven gaps keep their reason, the rest is eof.

    Returns how many sessions settling the last pending events started.
    """
    opened = settle(user, watermark=2**63, gap_ms=gap_ms)
    settled: list = user[SETTLED]
    last = len(settled) - 1
    for i, acc in enumerate(settled):
        if acc[ENDED]:
            reason = LOGOUT_REASON
        elif i < last or acc[END] + gap_ms < watermark:
            reason = GAP
        else:
            reason = EOF
        out.append(ClosedSession(user_id, acc, reason))
    settled.clear()
    return opened
