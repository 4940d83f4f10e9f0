"""``at``: one slot, and nothing after it."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler.errors import InvalidSchedule
from scheduler.triggers import AtTrigger, count_slots, iter_slots

from .helpers import iso, utc

AT = "2026-12-01T09:00:00+01:00"


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01T00:00:00Z", "2026-12-01T08:00:00Z"),
        ("2026-12-01T07:59:59.999Z", "2026-12-01T08:00:00Z"),
        ("2026-12-01T08:00:00Z", None),  # strictly after: the slot itself is not next
        ("2026-12-01T09:00:00+01:00", None),
        ("2027-01-01T00:00:00Z", None),
    ],
)
def test_next_slot(after: str, expected: str | None) -> None:
    slot = AtTrigger(utc(AT)).next_slot(utc(after))
    assert (iso(slot) if slot else None) == expected


def test_stored_in_utc_and_described() -> None:
    trigger = AtTrigger(utc(AT))
    assert iso(trigger.at) == "2026-12-01T08:00:00Z"
    assert trigger.describe() == "at 2026-12-01T08:00:00Z"


def test_counting() -> None:
    trigger = AtTrigger(utc(AT))
    assert count_slots(trigger, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z")) == 1
    assert count_slots(trigger, utc("2026-01-01T00:00:00Z"), utc("2026-12-01T08:00:00Z")) == 1
    assert count_slots(trigger, utc("2026-12-01T08:00:00Z"), utc("2027-01-01T00:00:00Z")) == 0
    assert [iso(s) for s in iter_slots(trigger, utc("2026-01-01T00:00:00Z"), utc(AT))] == [
        "2026-12-01T08:00:00Z"
    ]


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (datetime(2026, 12, 1, 9), "at 2026-12-01T09:00:00 has no UTC offset"),
        (
            utc("2026-12-01T09:00:00.25Z"),
            "at 2026-12-01T09:00:00.250000+00:00 is not a whole second",
        ),
    ],
)
def test_bad_instant_is_refused(at: datetime, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        AtTrigger(at)
    assert str(caught.value) == message
