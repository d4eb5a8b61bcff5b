"""Reading a date the ways ``$moment(value, pattern)`` does: ISO 8601 or RFC 2822 text, a
pattern (or several), or ``[year, month0, day, ...]``; local time where no offset is given."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import arrow
from dateutil import tz  # type: ignore[import-untyped]

_PARSE_LENIENT = {"MM": "M", "DD": "D", "HH": "H", "hh": "h", "mm": "m", "ss": "s"}
_PARSER = arrow.parser.DateTimeParser()


def local_zone() -> tzinfo:
    """The system's zone with its rules (summer time included), as Moment's local time."""
    zone: tzinfo = tz.tzlocal()
    return zone


def from_parts(parts: Sequence[Any]) -> datetime | None:
    """``moment([year, month0, day, ...])``: None for a date that does not exist."""
    numbers = [int(p) for p in parts[:7]] + [0] * (7 - min(len(parts), 7))
    year, month0, day = numbers[0], numbers[1], numbers[2] or 1
    try:
        at = datetime(year, month0 + 1, day, numbers[3], numbers[4], numbers[5], numbers[6] * 1000)
    except (ValueError, OverflowError):
        return None
    return at.replace(tzinfo=local_zone())


def with_pattern(value: str, pattern: str) -> datetime | None:
    lenient = re.sub(r"MM|DD|HH|hh|mm|ss", lambda m: _PARSE_LENIENT[m.group(0)], pattern)
    try:
        return in_local(_PARSER.parse(value, lenient))
    except (arrow.parser.ParserError, ValueError, TypeError):
        return None


def iso_or_rfc2822(text: str) -> datetime | None:
    try:
        return in_local(_PARSER.parse_iso(text))
    except (arrow.parser.ParserError, ValueError, TypeError):
        pass
    try:
        return in_local(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def in_local(at: datetime) -> datetime:
    """A time without an offset is local; one with an offset is shown in local time."""
    if at.tzinfo is None:
        return at.replace(tzinfo=local_zone())
    return at.astimezone(local_zone())
