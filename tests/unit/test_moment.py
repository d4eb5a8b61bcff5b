"""``$moment()`` in JSONata, checked against the examples in Moment.js' documentation
(momentjs.com/docs), evaluated as a step's field would be."""

from __future__ import annotations

import re
import time

import pytest

from runtime.mapping.jsonata import ExpressionError, compiled


def moment(expression: str, data: object = None) -> object:
    return compiled(expression, "field").evaluate(data or {})


@pytest.fixture(autouse=True)
def local_zone(monkeypatch):
    """Local time is the container's: UTC unless a test says otherwise."""

    def use(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    use("UTC")
    yield use
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        # Parse > String + Format
        ('$moment("12-25-1995", "MM-DD-YYYY").format("YYYY-MM-DD")', "1995-12-25"),
        ('$moment("2010-10-20 4:30", "YYYY-MM-DD HH:mm").format("YYYY-MM-DD HH:mm")',
         "2010-10-20 04:30"),
        ('$moment("2010 13", ["YYYY MM", "YYYY DD"]).format("YYYY-MM-DD")', "2010-01-13"),
        # Display > Format
        ('$moment("2010-02-14T15:25:50").format("dddd, MMMM Do YYYY, h:mm:ss a")',
         "Sunday, February 14th 2010, 3:25:50 pm"),
        ('$moment("2010-02-14T15:25:50").format("ddd, hA")', "Sun, 3PM"),
        ('$moment("2010-02-14T15:25:50").format("[Today is] dddd")', "Today is Sunday"),
        ('$moment("gibberish").format("YYYY MM DD")', "Invalid date"),
        ('$moment("2014-09-08T08:02:17-05:00").utcOffset(-300).format()',
         "2014-09-08T08:02:17-05:00"),
        ('$moment("2014-09-08T13:02:17Z").utc().format()', "2014-09-08T13:02:17Z"),
        ('$moment("2013-02-04T22:44:30.652Z").format("Q Qo DDD DDDD d E W WW GGGG X x")',
         "1 1st 35 035 1 1 6 06 2013 1360017870 1360017870652"),
        ('$moment("2013-02-04T22:44:30.652Z").format("YY M MM MMM D DD H k kk m s SSS S")',
         "13 2 02 Feb 4 04 22 22 22 44 30 652 6"),
        ('$moment("2013-02-04T00:05:00Z").format("h hh k A Z ZZ")', "12 12 24 AM +00:00 +0000"),
        # Display > As ISO 8601 String, Unix Timestamp (ms and s)
        ('$moment("2013-02-04T22:44:30.652Z").toISOString()', "2013-02-04T22:44:30.652Z"),
        ("$moment(1318874398806).valueOf()", 1318874398806),
        ("$moment(1318874398806).unix()", 1318874398),
        # Manipulate > Add, Subtract (a month added to January 31 is February 28)
        ('$moment([2010, 0, 31]).add(1, "months").format("YYYY-MM-DD")', "2010-02-28"),
        ('$moment([2010, 0, 31]).add(7, "d").format("YYYY-MM-DD")', "2010-02-07"),
        ('$moment([2010, 0, 31]).add({"days": 7, "months": 1}).format("YYYY-MM-DD")',
         "2010-03-07"),
        ('$moment([2010, 0, 31]).subtract(1, "day").format("YYYY-MM-DD")', "2010-01-30"),
        ('$moment([2010, 0, 31, 23]).add(90, "minutes").format("YYYY-MM-DD HH:mm")',
         "2010-02-01 00:30"),
        ('$moment([2010, 0, 31]).add(1, "Q").format("YYYY-MM-DD")', "2010-04-30"),
        # Manipulate > Start of Time, End of Time (weeks start on Sunday; ISO weeks Monday)
        ('$moment("2013-02-04T22:44:30.652").startOf("year").toISOString()',
         "2013-01-01T00:00:00.000Z"),
        ('$moment("2013-02-04T22:44:30.652").startOf("week").format("dddd YYYY-MM-DD")',
         "Sunday 2013-02-03"),
        ('$moment("2013-02-06T22:44:30.652").startOf("isoWeek").format("dddd YYYY-MM-DD")',
         "Monday 2013-02-04"),
        ('$moment("2013-05-04T22:44:30.652").startOf("quarter").format("YYYY-MM-DD")',
         "2013-04-01"),
        ('$moment("2013-02-04T22:44:30.652").endOf("month").toISOString()',
         "2013-02-28T23:59:59.999Z"),
        ('$moment("2013-02-04T22:44:30.652").endOf("day").toISOString()',
         "2013-02-04T23:59:59.999Z"),
        # Manipulate > UTC offset
        ('$moment("2013-02-04T22:44:30Z").utcOffset(120).format("HH:mm Z")', "00:44 +02:00"),
        ('$moment("2013-02-04T22:44:30Z").utcOffset(2).format("HH:mm Z")', "00:44 +02:00"),
        ('$moment("2013-02-04T22:44:30Z").utcOffset("+05:30").format("HH:mm Z")',
         "04:14 +05:30"),
        ('$moment("2013-02-04T22:44:30Z").utcOffset(120).utcOffset()', 120),
        ('$moment("2013-02-04T22:44:30+02:00").format()', "2013-02-04T20:44:30+00:00"),
        # Display > Difference
        ('$moment([2007, 0, 29]).diff($moment([2007, 0, 28]), "days")', 1),
        ("$moment([2007, 0, 29]).diff($moment([2007, 0, 28]))", 86400000),
        ('$moment([2008, 9]).diff($moment([2007, 0]), "years")', 1),
        ('$moment([2008, 9]).diff($moment([2007, 0]), "years", true)', 1.75),
        ('$moment([2008, 9]).diff($moment([2007, 0]), "months")', 21),
        ('$moment([2007, 0]).diff($moment([2008, 9]), "months")', -21),
        ('$moment([2007, 0, 28]).diff($moment([2007, 0, 29]), "days")', -1),
        # Query > Is Before, Is Same, Is After
        ('$moment("2010-10-20").isBefore("2010-10-21")', True),
        ('$moment("2010-10-20").isBefore("2010-12-31", "year")', False),
        ('$moment("2010-10-20").isBefore("2011-01-01", "year")', True),
        ('$moment("2010-10-20").isSame("2010-10-20")', True),
        ('$moment("2010-10-20").isSame("2009-12-31", "year")', False),
        ('$moment("2010-10-20").isSame("2010-01-01", "year")', True),
        ('$moment("2010-10-20").isSame("2010-12-31", "year")', True),
        ('$moment("2010-10-20").isSame("2011-01-01", "year")', False),
        ('$moment("2010-10-20").isAfter("2010-10-19")', True),
        ('$moment("2010-10-20").isAfter("2010-01-01", "year")', False),
        ('$moment("2010-10-20").isAfter("2009-12-31", "year")', True),
        ('$moment("2010-10-20").isAfter($moment("2010-10-21"))', False),
        # Get: months and days of the week count from 0, as in JavaScript
        ('$moment("2010-10-20T04:30:15.250").[year(), month(), date(), day(), hour(), '
         "minute(), second(), millisecond()]", [2010, 9, 20, 3, 4, 30, 15, 250]),
        ('$moment("gibberish").isValid()', False),
        ('$moment("Tue, 1 Nov 2016 01:00:00 +0000").toISOString()', "2016-11-01T01:00:00.000Z"),
    ],
)  # fmt: skip
def test_moments_documented_examples(expression, shown):
    assert moment(expression) == shown


def test_local_time_is_the_containers_zone_as_in_moment(local_zone):
    local_zone("America/New_York")
    assert moment('$moment("2010-10-20T04:30:00").format()') == "2010-10-20T04:30:00-04:00"
    assert moment('$moment("2010-01-20T04:30:00").format()') == "2010-01-20T04:30:00-05:00"
    # Days are added on the wall clock across the change to summer time.
    assert moment('$moment("2010-03-13T12:00:00").add(1, "day").format()') == (
        "2010-03-14T12:00:00-04:00"
    )


def test_now_and_fields_of_the_message():
    before = int(time.time() * 1000)
    now = moment("$moment().valueOf()")
    assert before <= now <= time.time() * 1000 + 1
    due = {"body": {"due": "2024-03-01T10:00:00Z"}}
    assert moment('$moment(body.due).subtract(1, "month").format("YYYY-MM-DD")', due) == (
        "2024-02-01"
    )


def test_a_moment_left_in_the_result_is_its_iso_string_as_json_stringify_gives():
    got = moment('{"at": $moment(1318874398806), "list": [$moment(0)]}')
    assert got == {"at": "2011-10-17T17:59:58.806Z", "list": ["1970-01-01T00:00:00.000Z"]}


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ('$moment().format("w")', "the token 'w' depends on a locale"),
        ('$moment().format("LT")', "the token 'LT' depends on a locale"),
        ('$moment().add(1, "fortnights")', "'fortnights' is not a unit"),
        ('$moment().utcOffset("5 hours")', "is not an offset like +05:00"),
    ],
)
def test_what_it_cannot_do_it_says(expression, said):
    with pytest.raises(ExpressionError, match=re.escape(said)):
        moment(expression)
