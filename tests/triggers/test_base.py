"""The shared helpers: iterating and counting slots of any trigger."""

from __future__ import annotations

from datetime import datetime

from scheduler.triggers import (
    AtTrigger,
    CountableTrigger,
    CronTrigger,
    EveryTrigger,
    Trigger,
    count_slots,
    iter_slots,
)

from .helpers import cron, iso, utc


class EveryTenMinutesWithoutShortcut:
    """A trigger that only knows next_slot, to exercise the walking fallback."""

    def next_slot(self, after: datetime) -> datetime | None:
        return EveryTrigger(600, utc("2026-01-01T00:00:00Z")).next_slot(after)

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        return EveryTrigger(600, utc("2026-01-01T00:00:00Z")).previous_slot(at_or_before)

    def describe(self) -> str:
        return "every 10 minutes, slowly"


def test_every_trigger_kind_satisfies_the_protocol() -> None:
    triggers: list[Trigger] = [
        EveryTrigger(1, utc("2026-01-01T00:00:00Z")),
        AtTrigger(utc("2026-01-01T00:00:00Z")),
        cron("* * * * *"),
        EveryTenMinutesWithoutShortcut(),
    ]
    countable = [isinstance(t, CountableTrigger) for t in triggers]
    assert countable == [True, True, True, False]
    assert isinstance(triggers[2], CronTrigger)


def test_iter_slots_is_half_open_after_exclusive_until_inclusive() -> None:
    slots = iter_slots(cron("0 * * * *"), utc("2026-01-01T00:00:00Z"), utc("2026-01-01T03:00:00Z"))
    assert [iso(s) for s in slots] == [
        "2026-01-01T01:00:00Z",
        "2026-01-01T02:00:00Z",
        "2026-01-01T03:00:00Z",
    ]


def test_count_slots_walks_when_there_is_no_shortcut() -> None:
    after, until = utc("2026-01-01T00:00:00Z"), utc("2026-01-02T00:00:00Z")
    assert count_slots(EveryTenMinutesWithoutShortcut(), after, until) == 144
    assert count_slots(cron("*/10 * * * *"), after, until) == 144
    assert count_slots(cron("*/10 * * * *"), until, after) == 0


def test_slots_are_whole_utc_seconds() -> None:
    after = utc("2026-05-05T10:00:00.123456+02:00")
    per_second = cron("* * * * * *", "Asia/Kolkata").next_slot(after)
    every_7_s = EveryTrigger(7, utc("2026-01-01T00:00:00Z")).next_slot(after)
    assert per_second is not None
    assert every_7_s is not None
    # iso() also checks that tzinfo is UTC; the 7 s grid: 10,742,400 s is 7 * 1,534,628 + 4.
    assert (iso(per_second), iso(every_7_s)) == ("2026-05-05T08:00:01Z", "2026-05-05T08:00:03Z")
    assert per_second.microsecond == every_7_s.microsecond == 0
