"""``every``: slots on the grid start + k * every_s, in integer seconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.errors import InvalidSchedule
from scheduler.triggers import EveryTrigger, count_slots, iter_slots
from tests.configs import config_file

from .helpers import iso, next_slots, utc

START = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z"),  # before start: start itself
        ("2025-12-31T23:59:59.999999Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z"),  # exactly on a slot: the next one
        ("2026-01-01T00:00:00.5Z", "2026-01-01T00:00:30Z"),
        ("2026-01-01T00:00:29.999Z", "2026-01-01T00:00:30Z"),
        ("2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"),
        ("2026-07-01T12:00:10Z", "2026-07-01T12:00:30Z"),
        ("2026-07-01T14:00:10+02:00", "2026-07-01T12:00:30Z"),  # any zone in, UTC out
    ],
)
def test_next_slot_is_on_the_grid(after: str, expected: str) -> None:
    slot = EveryTrigger(30, utc(START)).next_slot(utc(after))
    assert slot is not None
    assert iso(slot) == expected


def test_grid_is_anchored_at_start_not_at_the_epoch() -> None:
    trigger = EveryTrigger(7 * 3600, utc("2026-01-01T01:02:03Z"))
    assert next_slots(trigger, "2026-01-02T00:00:00Z", 3) == [
        "2026-01-02T05:02:03Z",
        "2026-01-02T12:02:03Z",
        "2026-01-02T19:02:03Z",
    ]


def _configured_every(tmp_path: Path, lines: str) -> EveryTrigger:
    config = load_config(config_file(tmp_path, f'[jobs.tick]\ntask = "t"\n{lines}'), {})
    trigger = config.jobs["tick"].trigger
    assert isinstance(trigger, EveryTrigger)
    return trigger


def test_every_without_start_is_anchored_at_the_epoch(tmp_path: Path) -> None:
    # 2026-01-01T00:00:00Z is 1,767,225,600 s, a multiple of 7: a grid point itself.
    trigger = _configured_every(tmp_path, 'every = "7s"\n')
    assert next_slots(trigger, START, 2) == ["2026-01-01T00:00:07Z", "2026-01-01T00:00:14Z"]


def test_every_with_start_is_anchored_at_start(tmp_path: Path) -> None:
    trigger = _configured_every(tmp_path, 'every = "7s"\nstart = "2026-01-01T00:00:03Z"\n')
    assert next_slots(trigger, START, 2) == ["2026-01-01T00:00:03Z", "2026-01-01T00:00:10Z"]


def test_start_in_another_zone_is_kept_as_the_same_instant() -> None:
    trigger = EveryTrigger(60, datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
    assert trigger.start == utc("2026-01-01T00:00:00Z")
    assert trigger == EveryTrigger(60, utc("2026-01-01T00:00:00Z"))


def test_slots_before_1970_and_far_ahead_use_integer_maths() -> None:
    trigger = EveryTrigger(1, utc("1969-12-31T23:59:58Z"))
    assert next_slots(trigger, "1960-01-01T00:00:00Z", 3) == [
        "1969-12-31T23:59:58Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
    ]
    far = EveryTrigger(3, utc("1970-01-01T00:00:00Z")).next_slot(utc("9000-01-01T00:00:00Z"))
    assert far is not None
    assert iso(far) == "9000-01-01T00:00:03Z"  # a float would have drifted here


@pytest.mark.parametrize(
    ("after", "until", "expected"),
    [
        ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 1),  # (after, until] holds start
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", 0),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", 10),
        ("2025-12-31T23:59:59Z", "2026-01-01T00:05:00Z", 11),
        ("2026-01-01T00:00:01Z", "2026-01-01T00:04:59Z", 9),
        ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 2880),
        ("2026-01-01T00:05:00Z", "2026-01-01T00:00:00Z", 0),  # until before after
        ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 0),  # all before start
    ],
)
def test_count_slots_is_arithmetic_and_agrees_with_iteration(
    after: str, until: str, expected: int
) -> None:
    trigger = EveryTrigger(30, utc(START))
    assert count_slots(trigger, utc(after), utc(until)) == expected
    assert len(list(iter_slots(trigger, utc(after), utc(until)))) == expected


def test_count_slots_over_a_year_of_seconds_needs_no_walk() -> None:
    trigger = EveryTrigger(1, utc(START))
    year = count_slots(trigger, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
    assert year == 365 * 86_400


@pytest.mark.parametrize(
    ("every_s", "message"),
    [
        (0, "every must be at least 1 second, got 0"),
        (-30, "every must be at least 1 second, got -30"),
        (1.5, "every must be a whole number of seconds, got 1.5"),
        (True, "every must be a whole number of seconds, got True"),
    ],
)
def test_bad_interval_is_refused(every_s: int, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        EveryTrigger(every_s, utc(START))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (datetime(2026, 1, 1), "start 2026-01-01T00:00:00 has no UTC offset"),
        (
            utc("2026-01-01T00:00:00.5Z"),
            "start 2026-01-01T00:00:00.500000+00:00 is not a whole second",
        ),
    ],
)
def test_bad_start_is_refused(start: datetime, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        EveryTrigger(30, start)
    assert str(caught.value) == message


def test_naive_after_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="time-zone-aware"):
        EveryTrigger(30, utc(START)).next_slot(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("every_s", "text"),
    [
        (30, "every 30s from 2026-01-01T00:00:00Z"),
        (300, "every 5m from 2026-01-01T00:00:00Z"),
        (5400, "every 1h30m from 2026-01-01T00:00:00Z"),
        (2 * 86_400 + 1, "every 2d1s from 2026-01-01T00:00:00Z"),
    ],
)
def test_describe(every_s: int, text: str) -> None:
    assert EveryTrigger(every_s, utc(START)).describe() == text


def test_no_slot_past_the_year_9999() -> None:
    trigger = EveryTrigger(86_400, utc("2026-01-01T00:00:00Z"))
    assert trigger.next_slot(utc("9999-12-31T00:00:00Z")) is None
