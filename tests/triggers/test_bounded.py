"""start, end and max_runs around every kind of trigger: exact slots, and previous_slot and
count_slots that agree with walking next_slot (what the policy relies on)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.triggers import AtTrigger, CronTrigger, EveryTrigger, compile_cron, iter_slots
from scheduler.triggers.base import Trigger, count_slots
from scheduler.triggers.bounded import BoundedTrigger, bounded, unbounded
from tests.triggers.helpers import iso, utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTELY = EveryTrigger(60, EPOCH)
WEEKDAYS_9 = CronTrigger(compile_cron("0 9 * * MON-FRI", "j"), ZoneInfo("Europe/Berlin"))


def slots(trigger: Trigger, after: str, until: str) -> list[str]:
    return [iso(s) for s in iter_slots(trigger, utc(after), utc(until))]


def test_nothing_to_bound_is_the_trigger_itself() -> None:
    assert bounded(MINUTELY, None, None, None) is MINUTELY
    assert unbounded(bounded(MINUTELY, end=utc("2026-12-01T00:00:00Z"))) is MINUTELY


def test_start_and_end_are_inclusive() -> None:
    trigger = bounded(MINUTELY, utc("2026-12-01T00:01:00Z"), utc("2026-12-01T00:03:00Z"))
    assert slots(trigger, "2026-11-30T00:00:00Z", "2026-12-02T00:00:00Z") == [
        "2026-12-01T00:01:00Z",
        "2026-12-01T00:02:00Z",
        "2026-12-01T00:03:00Z",
    ]
    assert trigger.next_slot(utc("2026-12-01T00:03:00Z")) is None
    assert iso(trigger.previous_slot(utc("2030-01-01T00:00:00Z"))) == "2026-12-01T00:03:00Z"
    assert trigger.previous_slot(utc("2026-12-01T00:00:59Z")) is None


def test_max_runs_counts_from_start() -> None:
    trigger = bounded(WEEKDAYS_9, utc("2026-12-04T09:00:00+01:00"), None, 3)  # a Friday
    assert slots(trigger, "2026-01-01T00:00:00Z", "2027-12-31T00:00:00Z") == [
        "2026-12-04T08:00:00Z",
        "2026-12-07T08:00:00Z",
        "2026-12-08T08:00:00Z",
    ]
    assert iso(trigger.previous_slot(utc("2040-01-01T00:00:00Z"))) == "2026-12-08T08:00:00Z"
    assert count_slots(trigger, utc("2020-01-01T00:00:00Z"), utc("2040-01-01T00:00:00Z")) == 3


def test_max_runs_and_end_whichever_comes_first() -> None:
    start = utc("2026-12-01T00:00:00Z")
    assert len(list(iter_slots(bounded(MINUTELY, start, start + timedelta(minutes=2), 10),
                               start - timedelta(1), start + timedelta(1)))) == 3  # fmt: skip
    assert len(list(iter_slots(bounded(MINUTELY, start, start + timedelta(hours=1), 2),
                               start - timedelta(1), start + timedelta(1)))) == 2  # fmt: skip


def test_fewer_slots_than_max_runs() -> None:
    trigger = bounded(AtTrigger(utc("2026-12-01T09:00:00Z")), utc("2026-01-01T00:00:00Z"), None, 5)
    assert slots(trigger, "2025-01-01T00:00:00Z", "2030-01-01T00:00:00Z") == [
        "2026-12-01T09:00:00Z"
    ]
    assert iso(trigger.previous_slot(utc("2030-01-01T00:00:00Z"))) == "2026-12-01T09:00:00Z"


def test_an_at_before_start_never_fires() -> None:
    trigger = bounded(AtTrigger(utc("2026-12-01T09:00:00Z")), utc("2026-12-02T00:00:00Z"))
    assert trigger.next_slot(utc("2020-01-01T00:00:00Z")) is None
    assert trigger.previous_slot(utc("2030-01-01T00:00:00Z")) is None


@pytest.mark.parametrize("runs", [1, 64, 65, 1000, 100_000])
def test_the_last_of_many_runs_by_counting_is_the_walked_one(runs: int) -> None:
    start = utc("2026-12-01T00:00:30Z")
    for inner in (MINUTELY, WEEKDAYS_9):
        trigger = bounded(inner, start, None, runs)
        assert isinstance(trigger, BoundedTrigger)
        walked = start - timedelta(seconds=1)
        for _ in range(runs):
            nxt = inner.next_slot(walked)
            assert nxt is not None
            walked = nxt
        assert trigger.previous_slot(utc("9000-01-01T00:00:00Z")) == walked
        assert trigger.next_slot(walked) is None


def test_the_last_slot_is_worked_out_once() -> None:
    trigger = bounded(MINUTELY, utc("2026-12-01T00:00:00Z"), None, 1000)
    assert isinstance(trigger, BoundedTrigger)
    trigger.next_slot(utc("2026-12-01T00:00:00Z"))
    cached = trigger._last_s
    assert cached == int(utc("2026-12-01T16:39:00Z").timestamp())
    object.__setattr__(trigger, "_last_s", cached - 60)  # proof that it is not recomputed
    assert iso(trigger.previous_slot(utc("2030-01-01T00:00:00Z"))) == "2026-12-01T16:38:00Z"


@pytest.mark.parametrize(
    "trigger",
    [
        bounded(MINUTELY, utc("2026-12-01T00:00:30Z"), utc("2026-12-01T02:00:00Z")),
        bounded(WEEKDAYS_9, utc("2026-12-03T00:00:00Z"), None, 7),
        bounded(WEEKDAYS_9, None, utc("2026-12-20T00:00:00Z")),
        bounded(EveryTrigger(7, EPOCH), utc("2026-12-01T00:00:00Z"), utc("2026-12-01T00:05:00Z"), 20),
    ],
)  # fmt: skip
def test_previous_and_count_agree_with_walking(trigger: Trigger) -> None:
    after = utc("2026-11-30T00:00:00Z")
    for until_h in (0, 1, 24, 48, 24 * 30):
        until = utc("2026-12-01T00:00:00Z") + timedelta(hours=until_h, seconds=17)
        walked = list(iter_slots(trigger, after, until))
        assert count_slots(trigger, after, until) == len(walked)
        assert trigger.previous_slot(until) == (walked[-1] if walked else None)


def test_usable_as_a_key_and_described() -> None:
    a = bounded(MINUTELY, utc("2026-12-01T00:00:00Z"), None, 3)
    b = bounded(MINUTELY, utc("2026-12-01T00:00:00Z"), None, 3)
    assert a == b
    assert {a: 1}[b] == 1
    assert (
        a.describe()
        == "every 1m from 1970-01-01T00:00:00Z from 2026-12-01T00:00:00Z, at most 3 runs"
    )


def test_max_runs_without_start_is_refused() -> None:
    with pytest.raises(ValueError, match="max_runs needs a start"):
        BoundedTrigger(MINUTELY, None, None, 3)
