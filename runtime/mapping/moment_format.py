"""``$moment().format()``: moment.js's format tokens rendered for a datetime, without a
locale (the tokens that need one are refused, naming what to use instead)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from runtime.errors import InvalidInput


class MomentError(InvalidInput):
    """A ``$moment()`` call the step cannot run as written."""


_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_TOKENS = re.compile(
    r"\[[^\]]*\]|YYYYYY|YYYY|YY|Y|Qo|Q|MMMM|MMM|Mo|MM|M|DDDD|DDDo|DDD|Do|DD|D|dddd|ddd|do|dd"
    r"|d|E|e|WW|Wo|W|ww|wo|w|GGGG|GG|gggg|gg|HH|H|hh|h|kk|k|mm|m|ss|s|S{1,9}|A|a|ZZ|Z|X|x"
    r"|LTS|LT|LLLL|LLL|LL|L|llll|lll|ll|l"
)
_UNSUPPORTED = re.compile(r"^(ww|wo|w|gggg|gg|e|LTS|LT|LLLL|LLL|LL|L|llll|lll|ll|l)$")


def formatted(at: datetime, pattern: str) -> str:
    """``at`` written as moment.js writes ``pattern`` (``[text]`` is kept as it is).

    Raises:
        MomentError: a token that depends on a locale.
    """
    return _TOKENS.sub(lambda match: _render(match.group(0), at), pattern)


def _ordinal(number: int) -> str:
    if 11 <= number % 100 <= 13:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def _offset(at: datetime, colon: bool) -> str:
    total = int((at.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _render(token: str, at: datetime) -> str:
    if token.startswith("["):
        return token[1:-1]
    if _UNSUPPORTED.match(token):
        raise MomentError(
            f"$moment().format(): the token {token!r} depends on a locale, which this "
            "runtime does not have; use W (ISO week), GGGG (ISO week year) or explicit tokens"
        )
    if token.startswith("S"):
        return f"{at.microsecond:06d}{'0' * 3}"[: len(token)]
    iso_year, iso_week, iso_day = at.isocalendar()
    weekday = (at.weekday() + 1) % 7
    quarter = (at.month - 1) // 3 + 1
    day_of_year = at.timetuple().tm_yday
    hour12 = at.hour % 12 or 12
    table: dict[str, Callable[[], str]] = {
        "YYYYYY": lambda: f"{'+' if at.year >= 0 else '-'}{abs(at.year):06d}",
        "YYYY": lambda: f"{at.year:04d}",
        "YY": lambda: f"{at.year % 100:02d}",
        "Y": lambda: str(at.year),
        "Q": lambda: str(quarter),
        "Qo": lambda: _ordinal(quarter),
        "M": lambda: str(at.month),
        "Mo": lambda: _ordinal(at.month),
        "MM": lambda: f"{at.month:02d}",
        "MMM": lambda: _MONTHS[at.month - 1][:3],
        "MMMM": lambda: _MONTHS[at.month - 1],
        "D": lambda: str(at.day),
        "Do": lambda: _ordinal(at.day),
        "DD": lambda: f"{at.day:02d}",
        "DDD": lambda: str(day_of_year),
        "DDDo": lambda: _ordinal(day_of_year),
        "DDDD": lambda: f"{day_of_year:03d}",
        "d": lambda: str(weekday),
        "do": lambda: _ordinal(weekday),
        "dd": lambda: _DAYS[weekday][:2],
        "ddd": lambda: _DAYS[weekday][:3],
        "dddd": lambda: _DAYS[weekday],
        "E": lambda: str(iso_day),
        "W": lambda: str(iso_week),
        "Wo": lambda: _ordinal(iso_week),
        "WW": lambda: f"{iso_week:02d}",
        "GGGG": lambda: f"{iso_year:04d}",
        "GG": lambda: f"{iso_year % 100:02d}",
        "H": lambda: str(at.hour),
        "HH": lambda: f"{at.hour:02d}",
        "h": lambda: str(hour12),
        "hh": lambda: f"{hour12:02d}",
        "k": lambda: str(at.hour or 24),
        "kk": lambda: f"{at.hour or 24:02d}",
        "m": lambda: str(at.minute),
        "mm": lambda: f"{at.minute:02d}",
        "s": lambda: str(at.second),
        "ss": lambda: f"{at.second:02d}",
        "A": lambda: "AM" if at.hour < 12 else "PM",
        "a": lambda: "am" if at.hour < 12 else "pm",
        "Z": lambda: _offset(at, colon=True),
        "ZZ": lambda: _offset(at, colon=False),
        "X": lambda: str(math.floor(at.timestamp())),
        "x": lambda: str(math.floor(at.timestamp() * 1000 + 0.5)),
    }
    render: Callable[[], str] = table[token]
    return render()
