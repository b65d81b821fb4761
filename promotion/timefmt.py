"""Event-time parsing and formatting: RFC 3339 with offset, or integer epoch milliseconds.

Parsing is on the per-event hot path, so the common forms take a fast path made of two small
caches: one for the 19-character date-time prefix (`2026-01-01T10:00:00`, one entry per second of
event time) and one for the tail (fraction and offset, e.g. `.123Z` or `.123+02:00`). Everything
else, including every invalid input, goes through the strict regular-expression parser
(`_parse_strict`), so results and error messages are exactly those of that parser.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS: Final = timedelta(milliseconds=1)
#: 0001-01-01 .. 9999-12-31 would be legal RFC 3339, but nothing before 1970 or after 9999 is a
#: plausible action time; bounding it keeps arithmetic on timestamps free of surprises.
MAX_MS: Final = 253_402_300_799_999

#: ASCII digits only: `\d` would also match other Unicode digits, which `int` then converts.
#: Any number of fraction digits (RFC 3339 sets no limit); precision beyond 1 ms is dropped.
_PREFIX_LEN: Final = 19
_PREFIX: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})")
_RFC3339: Final = re.compile(_PREFIX.pattern + r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})")
_TAIL: Final = re.compile(r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
_TAIL_CACHED_LEN: Final = 16  # ".123456789+02:00"
_LEAP_SECOND: Final = "60"
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
#: Bounded caches, cleared when full, so memory stays small whatever the input.
_CACHE_LIMIT: Final = 16_384
#: date-time prefix -> epoch ms of that wall time read as UTC
_prefix_ms: dict[str, int] = {}
#: tail (fraction + offset) -> milliseconds to add to the prefix's value
_tail_ms: dict[str, int] = {}
#: epoch second -> formatted "YYYY-MM-DDTHH:MM:SS."
_formatted: dict[int, str] = {}


class BadTimestamp(ValueError):
    """The value is not an RFC 3339 timestamp with offset nor valid epoch milliseconds."""


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp that carries an offset into epoch milliseconds."""
    base = _prefix_ms.get(text[:_PREFIX_LEN])
    if base is not None:
        adjust = _tail_ms.get(text[_PREFIX_LEN:])
        if adjust is not None:
            ms = base + adjust
            if 0 <= ms <= MAX_MS:
                return ms
    return _parse_and_remember(text)


def _parse_and_remember(text: str) -> int:
    """Cache miss: parse the two parts for the caches, or defer to the strict parser."""
    prefix = _PREFIX.match(text)
    tail = _TAIL.fullmatch(text, _PREFIX_LEN) if prefix is not None else None
    if tail is None:
        return _parse_strict(text)
    fraction, sign, hours, minutes = tail.groups()
    if sign is not None and (int(hours) > 23 or int(minutes) > 59):
        return _parse_strict(text)  # for its error
    try:
        wall = datetime(*map(int, prefix.groups()))  # type: ignore[arg-type]
    except ValueError:
        return _parse_strict(text)  # for its error
    base = (wall - _NAIVE_EPOCH) // ONE_MS
    adjust = int((fraction or "0")[:3].ljust(3, "0"))
    if sign is not None:
        offset = (int(hours) * 60 + int(minutes)) * 60_000
        adjust -= offset if sign == "+" else -offset
    ms = base + adjust
    if not 0 <= ms <= MAX_MS:
        return _parse_strict(text)  # for its error
    if len(_prefix_ms) >= _CACHE_LIMIT:
        _prefix_ms.clear()
    _prefix_ms[text[:_PREFIX_LEN]] = base
    tail_text = text[_PREFIX_LEN:]
    if len(tail_text) <= _TAIL_CACHED_LEN:  # a long fraction is legal, but not worth keeping
        if len(_tail_ms) >= _CACHE_LIMIT:
            _tail_ms.clear()
        _tail_ms[tail_text] = adjust
    return ms


def _parse_strict(text: str) -> int:
    """The reference parser: every input the fast path does not vouch for ends here."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadTimestamp("not an RFC 3339 timestamp with offset")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    leap = second == _LEAP_SECOND
    if leap:  # 23:59:60 UTC: read as the last millisecond of 23:59:59, so that order holds
        second, micros = "59", 999_000
    if offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise BadTimestamp("offset out of range")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError as error:
        raise BadTimestamp(str(error)) from None
    if leap:
        utc = moment.astimezone(timezone.utc)
        if (utc.hour, utc.minute) != (23, 59):
            raise BadTimestamp("second 60 is only valid as a leap second, at 23:59:60 UTC")
    ms = (moment - EPOCH) // ONE_MS
    if not 0 <= ms <= MAX_MS:
        raise BadTimestamp("timestamp before 1970 or after 9999")
    return ms


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with millisecond precision."""
    if type(ms) is not int or not 0 <= ms <= MAX_MS:
        return _format_strict(ms)
    second, milli = divmod(ms, 1000)
    prefix = _formatted.get(second)
    if prefix is None:
        if len(_formatted) >= _CACHE_LIMIT:
            _formatted.clear()
        prefix = _formatted[second] = (EPOCH + timedelta(seconds=second)).strftime(
            "%Y-%m-%dT%H:%M:%S."
        )
    return f"{prefix}{milli:03d}Z"


def _format_strict(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
