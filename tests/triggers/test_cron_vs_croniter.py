"""Differential test: where croniter 7 and our cron rules (README.md) agree, we give the same 50 slots.

Agreement needs ``implement_cron_bug=True`` (the ``*`` rule of the day fields), UTC (croniter
repeats fixed-time jobs on fall-back), and no ``1-1``, ``L``-weekday, ``W``, ``#`` or ``H``.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from croniter import croniter

from .helpers import cron, iso, next_slots, utc

EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "0 0 * * *",
    "15 14 1 * *",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "5 4 * * sun",
    "0 0,12 1 */2 *",
    "0 4 8-14 * *",
    "0 0 1,15 * 3",
    "0 0 */2 * MON",
    "0 0 1-31/2 * MON",
    "30 9 * jan-mar mon-fri",
    "0 0 * * 7",
    "0 0 * * 5-7",
    "0 12 29 2 *",
    "0 0 31 * *",
    "0 */7 * * *",
    "*/13 */5 * * *",
    "10-50/20 3 * * *",
    "0 0 * * */2",
    "0 0 */3 * *",
    "0 0 L * *",
    "0 0 13 * FRI",
    "0 0 1-7 * MON",
    "59 23 31 12 *",
    "0 6,18 * 6-8 SAT,SUN",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
]
SIX_FIELDS = ["*/15 * * * * *", "30 0 12 * * *", "0,30 */10 9-17 * * MON-FRI", "5-55/25 0 0 1 * *"]
STARTS = ["2026-01-01T00:00:00Z", "2027-12-31T23:59:30Z", "2028-02-28T12:00:00.5Z"]


def croniter_slots(text: str, after: str, count: int, *, seconds_first: bool) -> list[str]:
    walker = croniter(text, utc(after), implement_cron_bug=True, second_at_beginning=seconds_first)
    return [iso(walker.get_next(datetime)) for _ in range(count)]


@pytest.mark.parametrize("after", STARTS)
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_five_fields_agree_with_croniter(text: str, after: str) -> None:
    expected = croniter_slots(text, after, 50, seconds_first=False)
    assert next_slots(cron(text), after, 50) == expected


@pytest.mark.parametrize("text", SIX_FIELDS)
def test_six_fields_agree_with_croniter_seconds_first(text: str) -> None:
    expected = croniter_slots(text, STARTS[0], 50, seconds_first=True)
    assert next_slots(cron(text), STARTS[0], 50) == expected
