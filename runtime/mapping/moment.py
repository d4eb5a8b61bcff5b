"""``$moment()`` in JSONata: the platform's Moment.js extension, on arrow.

Flows built on the platform write ``$moment().format("YYYY-MM-DD")``,
``$moment(body.created).add(1, "days").toISOString()`` or
``$moment(body.due).isBefore($moment())``. ``$moment(input?, format?)`` gives an object
whose methods are the parts of Moment.js flows use, each with Moment's arguments, units
(``"days"``, ``"d"``, ``"M"``...) and results:

* parse: no input (now), an ISO 8601 or RFC 2822 string, a string with a format (or a list
  of formats), milliseconds since the epoch, ``[year, month0, day, h, m, s, ms]``, another
  moment. Without an offset, a time is local, as in Moment.
* ``format(f?)`` with Moment's tokens (``YYYY MM DD Do dddd HH hh mm ss SSS A Z ZZ X x Q
  W E [literal]``...), ``toISOString()`` (UTC, milliseconds), ``valueOf()``, ``unix()``,
  ``isValid()``, and the getters ``year() month() date() day() hour() minute() second()
  millisecond()``;
* ``add``/``subtract`` (amount and unit, or ``{"days": 1}``), ``startOf``/``endOf``,
  ``utc()``, ``local()``, ``utcOffset()`` (read, or set from minutes, hours or ``"+05:00"``);
* ``diff(other, unit?, asFloat?)`` (Moment's month arithmetic for months, quarters and
  years), ``isBefore``/``isAfter``/``isSame(other, unit?)``.

One difference on purpose: methods return a new moment instead of changing the one they are
called on (in an expression the two read the same). A moment left in a mapping's result
becomes its ISO string, as ``JSON.stringify`` makes it on the platform. Tokens that depend
on a locale's week (``w``, ``gggg``) and the locale formats (``L``, ``LT``) raise an error
that says so, rather than print something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import arrow
from jsonata import Jsonata  # type: ignore[import-untyped]

from runtime.mapping.moment_format import MomentError, formatted
from runtime.mapping.moment_parse import (
    from_parts,
    iso_or_rfc2822,
    local_zone,
    with_pattern,
)

INVALID = "Invalid date"
_UNITS = {
    "y": "year", "year": "year", "years": "year",
    "Q": "quarter", "quarter": "quarter", "quarters": "quarter",
    "M": "month", "month": "month", "months": "month",
    "w": "week", "week": "week", "weeks": "week",
    "W": "isoWeek", "isoweek": "isoWeek", "isoweeks": "isoWeek",
    "d": "day", "day": "day", "days": "day",
    "D": "date", "date": "date", "dates": "date",
    "h": "hour", "hour": "hour", "hours": "hour",
    "m": "minute", "minute": "minute", "minutes": "minute",
    "s": "second", "second": "second", "seconds": "second",
    "ms": "millisecond", "millisecond": "millisecond", "milliseconds": "millisecond",
}  # fmt: skip
_MOMENT_KEY = "__moment__"


class Moment:
    """One instant with the offset it is shown in (None: an invalid date)."""

    __slots__ = ("at", "utc_mode")

    def __init__(self, at: datetime | None, *, utc_mode: bool = False) -> None:
        self.at = at
        self.utc_mode = utc_mode

    # --- reading ------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        return self.at is not None

    def millis(self) -> int | None:
        if self.at is None:
            return None
        return math.floor(self.at.timestamp() * 1000 + 0.5)

    def format(self, pattern: str | None = None) -> str:
        at = self.at
        if at is None:
            return INVALID
        if pattern is None:
            pattern = "YYYY-MM-DDTHH:mm:ss[Z]" if self.utc_mode else "YYYY-MM-DDTHH:mm:ssZ"
        return formatted(at, pattern)

    def iso(self) -> str | None:
        if self.at is None:
            return None
        return Moment(self.at.astimezone(UTC), utc_mode=True).format("YYYY-MM-DDTHH:mm:ss.SSS[Z]")

    def offset_minutes(self) -> int | None:
        if self.at is None:
            return None
        delta = self.at.utcoffset() or timedelta(0)
        return int(delta.total_seconds() // 60)

    # --- new moments from this one --------------------------------------------------------

    def shifted(self, amount: Any, unit: Any = None, sign: int = 1) -> Moment:
        if self.at is None:
            return self
        if isinstance(amount, dict):
            moved = self
            for key, value in amount.items():
                moved = moved.shifted(value, key, sign)
            return moved
        if isinstance(amount, str) and not _is_number(amount):
            amount, unit = unit, amount  # Moment's older add("days", 1)
        units = _unit(unit)
        count = float(amount) * sign
        if units in ("year", "quarter", "month"):
            months = round(count) * {"year": 12, "quarter": 3, "month": 1}[units]
            return self._with(arrow.Arrow.fromdatetime(self.at).shift(months=months).datetime)
        seconds = {
            "week": 604800, "isoWeek": 604800, "day": 86400, "date": 86400,
            "hour": 3600, "minute": 60, "second": 1, "millisecond": 0.001,
        }[units]  # fmt: skip
        if units in ("week", "isoWeek", "day", "date"):
            days = round(count) * (7 if units in ("week", "isoWeek") else 1)
            return self._with(arrow.Arrow.fromdatetime(self.at).shift(days=days).datetime)
        return self._with(self.at + timedelta(seconds=count * seconds))

    def start_of(self, unit: Any) -> Moment:
        at = self.at
        if at is None:
            return self
        units = _unit(unit)
        if units == "millisecond":
            return self
        fields: dict[str, Any] = {
            "year": {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0},
            "quarter": {"month": (at.month - 1) // 3 * 3 + 1, "day": 1, "hour": 0,
                        "minute": 0, "second": 0},
            "month": {"day": 1, "hour": 0, "minute": 0, "second": 0},
            "week": {"hour": 0, "minute": 0, "second": 0},
            "isoWeek": {"hour": 0, "minute": 0, "second": 0},
            "day": {"hour": 0, "minute": 0, "second": 0},
            "date": {"hour": 0, "minute": 0, "second": 0},
            "hour": {"minute": 0, "second": 0},
            "minute": {"second": 0},
            "second": {},
        }[units]  # fmt: skip
        start = at.replace(microsecond=0, **fields)
        if units == "week":
            start -= timedelta(days=(start.weekday() + 1) % 7)  # weeks start on Sunday (en)
        elif units == "isoWeek":
            start -= timedelta(days=start.weekday())
        return self._with(start)

    def end_of(self, unit: Any) -> Moment:
        if self.at is None or _unit(unit) == "millisecond":
            return self
        following = self.start_of(unit).shifted(1, unit)
        return following.shifted(-1, "ms")

    def in_utc(self) -> Moment:
        return Moment(self.at.astimezone(UTC) if self.at else None, utc_mode=True)

    def in_local(self) -> Moment:
        return Moment(self.at.astimezone(local_zone()) if self.at else None)

    def with_offset(self, offset: Any) -> Moment:
        if self.at is None:
            return self
        minutes = _offset_minutes(offset)
        zone: tzinfo = UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
        return Moment(self.at.astimezone(zone), utc_mode=self.utc_mode or minutes == 0)

    def _with(self, at: datetime) -> Moment:
        return Moment(at, utc_mode=self.utc_mode)

    # --- comparing ----------------------------------------------------------------------

    def diff(self, other: Any, unit: Any = None, as_float: Any = False) -> float | None:
        that = to_moment(other)
        if self.at is None or that.at is None:
            return None
        units = _unit(unit) if unit not in (None, "") else "millisecond"
        mine, theirs = self.millis() or 0, that.millis() or 0
        zone_delta = ((that.offset_minutes() or 0) - (self.offset_minutes() or 0)) * 60_000
        if units in ("year", "quarter", "month"):
            months = _month_diff(self, that)
            output = months / {"year": 12, "quarter": 3, "month": 1}[units]
        else:
            divisor, zoned = {
                "second": (1e3, False), "minute": (6e4, False), "hour": (36e5, False),
                "day": (864e5, True), "date": (864e5, True), "week": (6048e5, True),
                "isoWeek": (6048e5, True), "millisecond": (1, False),
            }[units]  # fmt: skip
            output = (mine - theirs - (zone_delta if zoned else 0)) / divisor
        if as_float is True:
            return output
        return math.trunc(output)

    def compare(self, other: Any, unit: Any, relation: str) -> bool:
        that = to_moment(other)
        if self.at is None or that.at is None:
            return False
        theirs = that.millis() or 0
        if unit in (None, ""):
            mine = self.millis() or 0
            return {"before": mine < theirs, "after": mine > theirs, "same": mine == theirs}[
                relation
            ]
        start = self.start_of(unit).millis() or 0
        end = self.end_of(unit).millis() or 0
        return {
            "before": end < theirs,
            "after": theirs < start,
            "same": start <= theirs <= end,
        }[relation]


# --- the JSONata side ------------------------------------------------------------------------


def moment_function() -> Any:
    """The ``$moment`` binding."""
    return Jsonata.JLambda(lambda *args: as_object(parse(*args)))


def as_object(moment: Moment) -> dict[str, Any]:
    """The moment as JSONata sees it: an object whose fields are its methods."""

    def method(work: Callable[..., Any]) -> Any:
        return Jsonata.JLambda(work)

    def wrap(result: Moment) -> dict[str, Any]:
        return as_object(result)

    at = moment.at
    getters: dict[str, Callable[[datetime], int]] = {
        "year": lambda d: d.year,
        "month": lambda d: d.month - 1,
        "date": lambda d: d.day,
        "day": lambda d: (d.weekday() + 1) % 7,
        "hour": lambda d: d.hour,
        "minute": lambda d: d.minute,
        "second": lambda d: d.second,
        "millisecond": lambda d: d.microsecond // 1000,
    }
    shown: dict[str, Any] = {
        _MOMENT_KEY: moment,
        "format": method(lambda pattern=None: moment.format(pattern)),
        "toISOString": method(moment.iso),
        "toJSON": method(moment.iso),
        "valueOf": method(moment.millis),
        "unix": method(lambda: None if at is None else math.floor(at.timestamp())),
        "isValid": method(lambda: moment.valid),
        "add": method(lambda amount=1, unit=None: wrap(moment.shifted(amount, unit))),
        "subtract": method(lambda amount=1, unit=None: wrap(moment.shifted(amount, unit, -1))),
        "startOf": method(lambda unit: wrap(moment.start_of(unit))),
        "endOf": method(lambda unit: wrap(moment.end_of(unit))),
        "utc": method(lambda: wrap(moment.in_utc())),
        "local": method(lambda: wrap(moment.in_local())),
        "utcOffset": method(
            lambda offset=None: (
                moment.offset_minutes() if offset is None else wrap(moment.with_offset(offset))
            )
        ),
        "diff": method(lambda other, unit=None, exact=False: moment.diff(other, unit, exact)),
        "isBefore": method(lambda other=None, unit=None: moment.compare(other, unit, "before")),
        "isAfter": method(lambda other=None, unit=None: moment.compare(other, unit, "after")),
        "isSame": method(lambda other=None, unit=None: moment.compare(other, unit, "same")),
    }
    for name, read in getters.items():
        shown[name] = method(lambda read=read: None if at is None else read(at))
    return shown


def as_json(value: Any) -> Any:
    """A result with every moment in it replaced by its ISO string."""
    if isinstance(value, dict):
        inner = value.get(_MOMENT_KEY)
        if isinstance(inner, Moment):
            return inner.iso()
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return value


def to_moment(value: Any) -> Moment:
    if isinstance(value, dict) and isinstance(value.get(_MOMENT_KEY), Moment):
        inner: Moment = value[_MOMENT_KEY]
        return inner
    return parse(value)


def parse(value: Any = None, pattern: Any = None, *_more: Any) -> Moment:
    """What ``moment(value, pattern)`` gives."""
    if value is None:
        return Moment(datetime.now(local_zone()))
    if isinstance(value, dict) and isinstance(value.get(_MOMENT_KEY), Moment):
        known: Moment = value[_MOMENT_KEY]
        return Moment(known.at, utc_mode=known.utc_mode)
    if isinstance(value, bool):
        return Moment(None)
    if isinstance(value, int | float):
        if math.isnan(value) or math.isinf(value):
            return Moment(None)
        return Moment(datetime.fromtimestamp(value / 1000, local_zone()))
    if isinstance(value, list):
        return Moment(from_parts(value))
    if not isinstance(value, str):
        return Moment(None)
    if pattern is not None:
        patterns = pattern if isinstance(pattern, list) else [pattern]
        for each in patterns:
            found = with_pattern(value, str(each))
            if found is not None:
                return Moment(found)
        return Moment(None)
    return Moment(iso_or_rfc2822(value.strip()))


# --- helpers --------------------------------------------------------------------------------


def _unit(unit: Any) -> str:
    key = str(unit) if unit is not None else ""
    found = _UNITS.get(key) or _UNITS.get(key.lower()) if len(key) > 1 else _UNITS.get(key)
    if found is None:
        raise MomentError(
            f"$moment(): {unit!r} is not a unit; use years, quarters, months, weeks, days, "
            "hours, minutes, seconds or milliseconds (or y, Q, M, w, d, h, m, s, ms)"
        )
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _offset_minutes(offset: Any) -> int:
    if isinstance(offset, str):
        match = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})?|Z", offset.strip())
        if match is None:
            raise MomentError(f"$moment().utcOffset(): {offset!r} is not an offset like +05:00")
        if offset.strip() == "Z":
            return 0
        sign = -1 if match.group(1) == "-" else 1
        return sign * (int(match.group(2)) * 60 + int(match.group(3) or 0))
    number = float(offset)
    return int(number * 60 if -16 < number < 16 else number)


def _month_diff(a: Moment, b: Moment) -> float:
    """Moment's monthDiff(a, b): whole months between, plus the fraction of the month the
    rest is of (negative when b is earlier)."""
    first, second = a.at, b.at
    if first is None or second is None:
        return 0.0
    if first.day < second.day:
        return -_month_diff(b, a)
    whole = (second.year - first.year) * 12 + (second.month - first.month)
    anchor = a.shifted(whole, "months").millis() or 0
    later = b.millis() or 0
    if later - anchor < 0:
        anchor2 = a.shifted(whole - 1, "months").millis() or 0
        adjust = (later - anchor) / (anchor - anchor2)
    else:
        anchor2 = a.shifted(whole + 1, "months").millis() or 0
        adjust = (later - anchor) / (anchor2 - anchor)
    return -(whole + adjust) or 0.0
