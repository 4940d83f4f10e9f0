"""Parsing one field and one expression: values, names, macros and every error message."""

from __future__ import annotations

import pytest

from scheduler.errors import InvalidSchedule
from scheduler.triggers import compile_cron
from scheduler.triggers.cron.expression import MACROS

from .helpers import cron, next_slots


@pytest.mark.parametrize(
    ("text", "minutes", "hours"),
    [
        ("* * * * *", tuple(range(60)), tuple(range(24))),
        ("1-1 0 * * *", (1,), (0,)),  # 1-1 is just 1 (croniter reads it as the whole range)
        ("*/15 */6 * * *", (0, 15, 30, 45), (0, 6, 12, 18)),
        ("10-50/20 1-23/11 * * *", (10, 30, 50), (1, 12, 23)),
        ("5,1,3,1 23,0 * * *", (1, 3, 5), (0, 23)),
        ("0-4,58-59 12-12 * * *", (0, 1, 2, 3, 4, 58, 59), (12,)),
        ("*/7 9-17/100 * * *", (0, 7, 14, 21, 28, 35, 42, 49, 56), (9,)),
        ("059 007 * * *", (59,), (7,)),
    ],
)
def test_minute_and_hour_fields(
    text: str, minutes: tuple[int, ...], hours: tuple[int, ...]
) -> None:
    times = compile_cron(text, "job").times
    assert (times.minutes, times.hours, times.seconds) == (minutes, hours, (0,))


@pytest.mark.parametrize(
    ("month_text", "months"),
    [
        ("JAN", (1,)),
        ("jan,Mar,DEC", (1, 3, 12)),
        ("feb-APR", (2, 3, 4)),
        ("*/3", (1, 4, 7, 10)),
        ("2-12/5", (2, 7, 12)),
        ("mar-5", (3, 4, 5)),
    ],
)
def test_month_field(month_text: str, months: tuple[int, ...]) -> None:
    assert compile_cron(f"0 0 1 {month_text} *", "job").days.months == months


@pytest.mark.parametrize(
    ("dow_text", "weekdays"),
    [
        ("0", {0}),
        ("7", {0}),  # 0 and 7 are both Sunday
        ("sun", {0}),
        ("SUN,7,0", {0}),
        ("Mon-fri", {1, 2, 3, 4, 5}),
        ("5-7", {5, 6, 0}),
        ("*/2", {0, 2, 4, 6}),
        ("1-7/3", {1, 4, 0}),
        ("sat,SUN", {6, 0}),
    ],
)
def test_day_of_week_field(dow_text: str, weekdays: set[int]) -> None:
    assert compile_cron(f"0 0 * * {dow_text}", "job").days.day_of_week.weekdays == weekdays


def test_six_fields_put_seconds_first() -> None:
    times = compile_cron("*/20 5 4 * * *", "job").times
    assert (times.seconds, times.minutes, times.hours) == ((0, 20, 40), (5,), (4,))
    assert next_slots(cron("*/20 * * * * *"), "2026-01-01T00:00:00Z", 3) == [
        "2026-01-01T00:00:20Z",
        "2026-01-01T00:00:40Z",
        "2026-01-01T00:01:00Z",
    ]


@pytest.mark.parametrize("macro", sorted(MACROS))
def test_macros_mean_their_expansion(macro: str) -> None:
    expanded = compile_cron(MACROS[macro], "job")
    for spelling in (macro, macro.upper()):
        compiled = compile_cron(spelling, "job")
        assert (compiled.times, compiled.days, compiled.wildcard) == (
            expanded.times,
            expanded.days,
            expanded.wildcard,
        )


def test_macro_expansions() -> None:
    assert MACROS == {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }


@pytest.mark.parametrize(
    ("text", "wildcard"),
    [
        ("@hourly", True),
        ("* 3 * * *", True),
        ("0 * * * *", True),
        ("*/5 * * * *", True),
        ("0 */2 * * *", True),
        ("0 0-23 * * *", False),  # the same hours as "*", but written as fixed times
        ("30 2 * * *", False),
        ("* 30 2 * * *", False),  # the seconds field does not count
        ("@daily", False),
    ],
)
def test_wildcard_flag(text: str, wildcard: bool) -> None:
    assert compile_cron(text, "job").wildcard is wildcard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 5 or 6 fields, got 0"),
        ("* * * *", "expected 5 or 6 fields, got 4"),
        ("* * * * * * *", "expected 5 or 6 fields, got 7"),
        ("@fortnightly", 'unknown macro "@fortnightly"'),
        ("@reboot", 'unknown macro "@reboot"'),
        ("@daily 5", 'macro "@daily" cannot be followed by fields'),
        ("5/10 * * * *", 'minute field: step without a range ("5/10"); write "5-59/10" or "*/10"'),
        (
            "0 0 * * MON/2",
            'day-of-week field: step without a range ("MON/2"); write "MON-7/2" or "*/2"',
        ),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month 32 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * 0 *", "month 0 is out of range 1-12"),
        ("* * * * 8", "day-of-week 8 is out of range 0-7"),
        ("60 * * * * *", "second 60 is out of range 0-59"),
        ("* * * FOO *", 'unknown month name "FOO"'),
        ("* * * * FUN", 'unknown day-of-week name "FUN"'),
        ("* * * * MONDAY", 'unknown day-of-week name "MONDAY"'),
        ("5-1 * * * *", 'minute field: reversed range "5-1"; write "5-59,0-1"'),
        ("0 22-2 * * *", 'hour field: reversed range "22-2"; write "22-23,0-2"'),
        ("0 0 * * FRI-MON", 'day-of-week field: reversed range "FRI-MON"; write "FRI-7,0-MON"'),
        ("0 0 * * FRI-SUN", 'day-of-week field: reversed range "FRI-SUN"; write "FRI-7,0-SUN"'),
        ("*/0 * * * *", 'minute field: step must be a whole number >= 1 in "*/0"'),
        ("*/x * * * *", 'minute field: step must be a whole number >= 1 in "*/x"'),
        ("1,,2 * * * *", 'minute field: empty list item in "1,,2"'),
        ("1, * * * *", 'minute field: empty list item in "1,"'),
        ("abc * * * *", 'minute field: cannot read "abc"'),
        ("-5 * * * *", 'minute field: cannot read "-5"'),
        ("1-2-3 * * * *", 'minute field: cannot read "1-2-3"'),
        ("JAN * * * *", 'minute field: cannot read "JAN"'),
        ("L * * * *", 'minute field: cannot read "L"'),
        ("0 0 * L *", 'unknown month name "L"'),
        ("0 0 WL * *", 'day-of-month field: cannot read "WL"'),  # LW reads since issue 12
        ("0 0 5L * *", 'day-of-month field: cannot read "5L"'),
        ("0 0 32W * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 * * L", 'day-of-week field: "L" needs a weekday before it, as in "5L"'),
        ("0 0 * * 8L", "day-of-week 8 is out of range 0-7"),
        ("0 0 * * MON#6", 'day-of-week field: the week in "MON#6" must be 1-5'),
        ("0 0 * * 1#0", 'day-of-week field: the week in "1#0" must be 1-5'),
        ("0 0 * * 1#", 'day-of-week field: the week in "1#" must be 1-5'),
        ("0 0 * * FOO#1", 'unknown day-of-week name "FOO"'),
        ("0 0 * * 1#2#3", 'day-of-week field: the week in "1#2#3" must be 1-5'),
        ("0 0 30 2 *", "never fires (day-of-month 30 never occurs in February)"),
        ("0 0 30,31 2 *", "never fires (day-of-month 30,31 never occurs in February)"),
        ("0 0 31 4,6 *", "never fires (day-of-month 31 never occurs in April or June)"),
        (
            "0 0 31 apr,jun,sep,nov *",
            "never fires (day-of-month 31 never occurs in April, June, September or November)",
        ),
        ("0 0 30W 2 *", "never fires (day-of-month 30 never occurs in February)"),
        ("0 0 */10 2 1#5", "expression never fires"),  # 5th Monday of February is the 29th
        ("0 0 30 2 */2", "expression never fires"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        compile_cron(text, "job")
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    [
        "0 0 29 2 *",  # leap years only
        "0 0 31 * *",
        "0 0 30 2 MON",  # both day fields restricted: Mondays in February
        "0 0 L 2 *",
        "0 0 * 2 MON#5",  # February 29 on a Monday: 2016, 2044, ...
        "0 0 31W 1-12 *",
    ],
)
def test_rare_but_possible_expressions_compile(text: str) -> None:
    compile_cron(text, "job")
