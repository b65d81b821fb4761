"""Event-time parsing and formatting: RFC 3339 with offset, or integer epoch milliseconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS: Final = timedelta(milliseconds=1)
#: 0001-01-01 .. 9999-12-31 would be legal RFC 3339, but nothing before 1970 or after 9999 is a
#: plausible action time; bounding it keeps arithmetic on timestamps free of surprises.
MAX_MS: Final = 253_402_300_799_999

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


class BadTimestamp(ValueError):
    """The value is not an RFC 3339 timestamp with offset nor valid epoch milliseconds."""


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp that carries an offset into epoch milliseconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadTimestamp("not an RFC 3339 timestamp with offset")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
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
    ms = (moment - EPOCH) // ONE_MS
    if not 0 <= ms <= MAX_MS:
        raise BadTimestamp("timestamp before 1970 or after 9999")
    return ms


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with millisecond precision."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
