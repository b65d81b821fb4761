"""One user's open sessions: the event-time session state machine.

A user's state is one plain list `[deadline, settled, *pending]`:

* `pending` (from index 2 on) holds raw events (plain tuples) in arrival order, not yet folded.
  Arrival only appends (the hot path does no sorting, no duplicate search and no folding);
  `tidy` later drops repeated event_ids (the first arrival wins) and sorts by (ts, event_id).
* `settled` is None or a list of accumulators of sessions built from events below the watermark.
  Every event still to come sorts after all of them, so they only ever grow at the end, and are
  closed once the watermark passes their logout or their end + gap.
* `deadline` is a lower bound of the watermark value after which something of this user can
  close: the user is looked at again (tidied, settled, closed, rescheduled exactly) only then, or
  when its pending events pile up.

A user whose only state is one pending event is stored as that event tuple alone (a "light"
user): its deadline follows from the event (`event_deadline`); a second event turns it into the
list form, and if none comes it closes as it is (`close_light`). Folding settled events into
accumulators keeps state per open session small; folding them only when the user is looked at
keeps arrival cheap.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from promotion.events import EVENT_ID, LOGOUT, TS, TYPE
from promotion.facts import END, ENDED, IDS, fold, new_accumulator

DEADLINE: Final = 0
SETTLED: Final = 1
PENDING: Final = 2  # index of the first pending event

GAP: Final = "gap"
LOGOUT_REASON: Final = "logout"
EOF: Final = "eof"


class ClosedSession(NamedTuple):
    user_id: str
    accumulator: list
    close_reason: str


def event_deadline(event: tuple, gap_ms: int) -> int:
    """How early this event can make its user's first session closable.

    It is the deadline of a light user (this event alone). For an arriving event: a logout can
    close a session at its own ts; any other event only extends or merges sessions, or opens one
    of its own (closable at ts + gap). So min(the user's bound, this) stays a lower bound of the
    user's exact deadline, and an in-order, non-logout event never lowers it.
    """
    return event[TS] if event[TYPE] == LOGOUT else event[TS] + gap_ms


def close_light(event: tuple, watermark: int, gap_ms: int, user_id: str) -> ClosedSession:
    """A light user's one event as a closed session: at its deadline, or at end of input."""
    if event[TYPE] == LOGOUT:
        reason = LOGOUT_REASON
    elif event[TS] + gap_ms < watermark:
        reason = GAP
    else:
        reason = EOF
    return ClosedSession(user_id, new_accumulator(event), reason)


def tidy(user: list) -> int:
    """Sort pending events by (ts, event_id) and drop repeats of an event_id already pending (the
    first arrival wins) or folded into one of the user's open sessions: producer retries, even
    with another timestamp. Returns how many repeats were dropped."""
    size = len(user)
    if size <= PENDING:
        return 0
    settled = user[SETTLED]
    pending = user[PENDING:]
    ids = {event[EVENT_ID] for event in pending}
    if len(ids) == size - PENDING and (not settled or all(ids.isdisjoint(acc[IDS]) for acc in settled)):
        if size > PENDING + 1:  # the common case: no repeats, and sorting an in-order run is cheap
            pending.sort()  # event ids are distinct: tuples compare by (ts, event_id) alone
            user[PENDING:] = pending
        return 0
    kept: list[tuple] = []
    seen: set[str] = set()
    for event in pending:
        event_id = event[EVENT_ID]
        if event_id in seen or (settled and any(event_id in acc[IDS] for acc in settled)):
            continue
        seen.add(event_id)
        kept.append(event)
    kept.sort()
    user[PENDING:] = kept
    return size - PENDING - len(kept)


def settle(user: list, watermark: int, gap_ms: int) -> int:
    """Fold pending events below the watermark into settled sessions, in event-time order.

    Pending events must be tidy (`tidy`). Returns how many sessions this started.
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

    Pending events must be tidy. Returns how many sessions settling them started.
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
