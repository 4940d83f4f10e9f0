"""Which days fire: the cronie OR rule and its ``*`` exception, L, nL, n#k, nW, Feb 29."""

from __future__ import annotations

import pytest

from .helpers import cron, next_slots

CASES = [
    # Both day fields restricted: a day matches if EITHER matches (odd days or Mondays).
    (
        "0 0 1-31/2 * MON",
        "2026-01-01T00:00:00Z",
        ["2026-01-03", "2026-01-05", "2026-01-07", "2026-01-09", "2026-01-11", "2026-01-12"],
    ),
    # A day field starting with "*" is unrestricted, so BOTH must match: odd Mondays.
    ("0 0 */2 * MON", "2026-01-01T00:00:00Z", ["2026-01-05", "2026-01-19", "2026-02-09"]),
    ("0 0 1,15 * 3", "2026-01-01T00:00:00Z", ["2026-01-07", "2026-01-14", "2026-01-15"]),
    ("0 0 * * 7", "2026-01-01T00:00:00Z", ["2026-01-04", "2026-01-11"]),
    ("0 0 * 2 *", "2026-02-27T00:00:00Z", ["2026-02-28", "2027-02-01"]),
    # Feb 29 exists only in leap years.
    ("0 0 29 2 *", "2026-01-01T00:00:00Z", ["2028-02-29", "2032-02-29"]),
    ("0 0 29 2 *", "2096-03-01T00:00:00Z", ["2104-02-29"]),  # 2100 is not a leap year
    # L: the last day of each month.
    ("0 0 L * *", "2028-01-15T00:00:00Z", ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]),
    ("0 0 L,15 * *", "2026-02-01T00:00:00Z", ["2026-02-15", "2026-02-28", "2026-03-15"]),
    ("0 0 L * MON", "2026-01-24T00:00:00Z", ["2026-01-26", "2026-01-31", "2026-02-02"]),
    # 5L: the last Friday of the month.
    ("0 0 * * 5L", "2026-01-01T00:00:00Z", ["2026-01-30", "2026-02-27", "2026-03-27"]),
    ("0 0 * * FRIL", "2026-01-01T00:00:00Z", ["2026-01-30"]),
    # MON#2: the second Monday; 1#5 only in months with five Mondays.
    ("0 0 * * MON#2", "2026-01-01T00:00:00Z", ["2026-01-12", "2026-02-09", "2026-03-09"]),
    ("0 0 * * 1#5", "2026-01-01T00:00:00Z", ["2026-03-30", "2026-06-29", "2026-08-31"]),
    ("0 0 * * 0#1,6L", "2026-01-01T00:00:00Z", ["2026-01-04", "2026-01-31", "2026-02-01"]),
    # nW: the weekday nearest day n, without leaving the month.
    ("0 0 15W * *", "2026-02-01T00:00:00Z", ["2026-02-16", "2026-03-16", "2026-04-15"]),
    ("0 0 15W * *", "2026-08-01T00:00:00Z", ["2026-08-14"]),  # Saturday 15th -> Friday
    ("0 0 1W * *", "2026-07-15T00:00:00Z", ["2026-08-03"]),  # Saturday the 1st -> Monday 3rd
    ("0 0 1W * *", "2026-02-15T00:00:00Z", ["2026-03-02"]),  # Sunday the 1st -> Monday 2nd
    ("0 0 31W * *", "2026-05-01T00:00:00Z", ["2026-05-29", "2026-07-31"]),  # Sunday 31st -> Fri
    ("0 0 30W * *", "2026-05-01T00:00:00Z", ["2026-05-29", "2026-06-30"]),  # Saturday 30th -> Fri
    ("0 0 28W 2 *", "2026-01-01T00:00:00Z", ["2026-02-27", "2027-02-26"]),  # Sat, then Sun
]


@pytest.mark.parametrize(("text", "after", "days"), CASES)
def test_days(text: str, after: str, days: list[str]) -> None:
    found = next_slots(cron(text), after, len(days))
    assert found == [f"{day}T00:00:00Z" for day in days]
