"""The catch-up policy, as a pure function of (job, watermark, now)."""

import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobspec import JobSpec
from scheduler.policy import decide, slots_of
from scheduler.records import MissedRange
from scheduler.triggers import AtTrigger, CronTrigger, EveryTrigger, Trigger, compile_cron
from tests.triggers.reference import decide_by_walking

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z, a multiple of 10


def _s(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def cron(text: str, zone: str = "UTC", job_name: str = "job") -> CronTrigger:
    return CronTrigger(compile_cron(text, job_name), ZoneInfo(zone))


def every(seconds: int, catchup: str = "all", grace_s: int = 300) -> JobSpec:
    return JobSpec(
        name="job",
        task="t",
        kind="every",
        schedule=f"{seconds}s",
        timezone=ZoneInfo("UTC"),
        trigger=EveryTrigger(seconds, datetime(1970, 1, 1, tzinfo=UTC)),
        catchup=catchup,  # type: ignore[arg-type]
        misfire_grace=timedelta(seconds=grace_s),
    )


def test_on_time_slot_fires() -> None:
    decision = decide(every(10), T0 - 10, T0)
    assert decision.fire == (T0,)
    assert decision.missed == ()


def test_nothing_due_before_the_next_slot() -> None:
    assert decide(every(10), T0, T0 + 9).fire == ()


@pytest.mark.parametrize(
    ("catchup", "fire", "missed"),
    [
        ("all", (T0 + 10, T0 + 20, T0 + 30), ()),
        ("latest", (T0 + 30,), (MissedRange("job", T0 + 10, T0 + 20, 2, "catchup=latest"),)),
        ("none", (T0 + 30,), (MissedRange("job", T0 + 10, T0 + 20, 2, "catchup=none"),)),
    ],
)
def test_catchup_after_a_gap_within_grace(
    catchup: str, fire: tuple[int, ...], missed: tuple[MissedRange, ...]
) -> None:
    decision = decide(every(10, catchup), T0, T0 + 30)
    assert decision.fire == fire
    assert decision.missed == missed


def test_none_skips_even_the_newest_slot_when_it_is_late() -> None:
    decision = decide(every(10, "none"), T0, T0 + 25)
    assert decision.fire == ()
    assert decision.missed == (MissedRange("job", T0 + 10, T0 + 20, 2, "catchup=none"),)


def test_slots_older_than_grace_are_one_missed_range() -> None:
    # A 1 s job down for a day: one record, not 86,400.
    day = 86_400
    decision = decide(every(1, grace_s=60), T0, T0 + day)
    assert decision.missed == (
        MissedRange("job", T0 + 1, T0 + day - 61, day - 61, "misfire_grace"),
    )
    # 60 s late is still within the grace.
    assert decision.fire == tuple(range(T0 + day - 60, T0 + day + 1))


def test_zero_grace_fires_only_the_slot_due_now() -> None:
    decision = decide(every(10, grace_s=0), T0, T0 + 30)
    assert decision.fire == (T0 + 30,)
    assert decision.missed == (MissedRange("job", T0 + 10, T0 + 20, 2, "misfire_grace"),)


def test_one_off_missed_past_its_grace_is_recorded() -> None:
    job = JobSpec(
        name="report",
        task="t",
        kind="at",
        schedule="",
        timezone=ZoneInfo("UTC"),
        trigger=AtTrigger(datetime.fromtimestamp(T0, UTC)),
        misfire_grace=timedelta(minutes=5),
    )
    assert decide(job, T0 - 60, T0 + 299).fire == (T0,)
    late = decide(job, T0 - 60, T0 + 301)
    assert late.fire == ()
    assert late.missed == (MissedRange("report", T0, T0, 1, "misfire_grace"),)


# --- Catch-up cost (issue 8): the same answers as walking every slot, without the walk. ---

NEW_YORK, BERLIN, LORD_HOWE, SANTIAGO = (
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
)
# DST changes of 2026 in those zones, a year end and a leap day (epoch seconds).
INSTANTS_S = [
    _s("2026-03-08T07:00:00Z"),
    _s("2026-11-01T06:00:00Z"),
    _s("2026-03-29T01:00:00Z"),
    _s("2026-10-25T01:00:00Z"),
    _s("2026-10-03T15:30:00Z"),
    _s("2026-04-04T15:00:00Z"),
    _s("2026-04-05T03:00:00Z"),
    _s("2026-09-06T04:00:00Z"),
    _s("2026-01-01T00:00:00Z"),
    _s("2028-02-29T12:00:00Z"),
]
# (trigger, the longest backlog the brute force walks in reasonable time)
SCHEDULES: list[tuple[Trigger, int]] = [
    (EveryTrigger(1, datetime(1970, 1, 1, tzinfo=UTC)), 3600),
    (EveryTrigger(7, datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)), 6 * 3600),
    (EveryTrigger(600, datetime(1970, 1, 1, tzinfo=UTC)), 30 * 86_400),
    (AtTrigger(datetime(2026, 10, 25, 1, 0, tzinfo=UTC)), 400 * 86_400),
    (cron("* * * * *"), 2 * 86_400),
    (cron("*/15 * * * * *", NEW_YORK), 3 * 3600),
    (cron("30 2 * * *", NEW_YORK), 400 * 86_400),
    (cron("0,15,30,45 2,3 * * *", NEW_YORK), 30 * 86_400),
    (cron("* 1 * * *", NEW_YORK), 2 * 86_400),
    (cron("*/20 2 * * *", BERLIN), 30 * 86_400),
    (cron("15 2 * * *", LORD_HOWE), 400 * 86_400),
    (cron("*/10 1-3 * * *", LORD_HOWE), 10 * 86_400),
    (cron("0 0 * * *", SANTIAGO), 400 * 86_400),
    (cron("*/30 23,0 * * *", SANTIAGO), 30 * 86_400),
    (cron("0 12 L * *", NEW_YORK), 3 * 365 * 86_400),
    (cron("0 9 15W * *"), 3 * 365 * 86_400),
    (cron("0 8 * * MON#2,5L", BERLIN), 3 * 365 * 86_400),
    (cron("0 0 29 2 *"), 9 * 365 * 86_400),
    (cron("H H * * *", job_name="job"), 60 * 86_400),
]
POLICIES = [
    (catchup, grace_s)
    for catchup in ("all", "latest", "none")
    for grace_s in (0, 1, 300, 3600, 86_400)
]


def _id(value: object) -> str:
    return (
        value.describe()
        if isinstance(value, CronTrigger | EveryTrigger | AtTrigger)
        else str(value)
    )


def job_on(trigger: Trigger, catchup: str, grace_s: int) -> JobSpec:
    return JobSpec(
        name="job",
        task="t",
        kind="cron",
        schedule="",
        timezone=ZoneInfo("UTC"),
        trigger=trigger,
        catchup=catchup,  # type: ignore[arg-type]
        misfire_grace=timedelta(seconds=grace_s),
    )


@pytest.mark.parametrize(("trigger", "max_backlog_s"), SCHEDULES, ids=_id)
def test_decide_agrees_with_walking_every_slot(trigger: Trigger, max_backlog_s: int) -> None:
    rng = random.Random(trigger.describe())
    backlogs_s = [0, 1, 2, 60, 61, 299, 301, 3600, 3601, max_backlog_s]
    for instant_s in INSTANTS_S:
        for _ in range(3):
            now_s = instant_s + rng.choice((-3601, -301, -2, -1, 0, 1, 2, 59, 300, 1800, 7200))
            after_s = now_s - min(rng.choice(backlogs_s), max_backlog_s)
            for catchup, grace_s in POLICIES:
                job = job_on(trigger, catchup, grace_s)
                expected = decide_by_walking(job, after_s, now_s)
                assert decide(job, after_s, now_s) == expected, (catchup, grace_s, after_s, now_s)
                assert decide(job, after_s, now_s, slots_of(trigger)) == expected


@pytest.mark.parametrize(
    ("trigger", "after"),
    [
        (cron("0 * * * *", NEW_YORK), "2025-11-26T12:00:00Z"),
        (cron("30 2 * * *", NEW_YORK), "1970-01-01T00:00:00Z"),
        (cron("@weekly", BERLIN), "1970-01-01T00:00:00Z"),
        (EveryTrigger(6 * 3600, datetime(1970, 1, 1, 0, 0, 3, tzinfo=UTC)), "1970-01-01T00:00:00Z"),
    ],
    ids=_id,
)
def test_long_backlogs_agree_with_walking(trigger: Trigger, after: str) -> None:
    after_s, now_s = _s(after), _s("2026-11-26T12:00:30Z")
    for catchup in ("all", "latest", "none"):
        job = job_on(trigger, catchup, 300)
        assert decide(job, after_s, now_s) == decide_by_walking(job, after_s, now_s)


class CountedSteps:
    """A trigger that counts how often it is walked, around a real one."""

    def __init__(self, inner: CronTrigger) -> None:
        self.inner, self.steps, self.searches = inner, 0, 0

    def next_slot(self, after: datetime) -> datetime | None:
        self.steps += 1
        return self.inner.next_slot(after)

    def previous_slot(self, at_or_before: datetime) -> datetime | None:
        self.searches += 1
        return self.inner.previous_slot(at_or_before)

    def count_slots_between(self, after: datetime, until: datetime) -> int:
        return self.inner.count_slots_between(after, until)

    def describe(self) -> str:
        return self.inner.describe()


NOW_S = _s("2026-11-26T12:00:30Z")
YEAR_S = 365 * 86_400


@pytest.mark.parametrize(
    ("catchup", "fire", "skipped", "most_steps"),
    [
        # The slots within the grace fire; the rest of the backlog is one range. Steps: one per
        # slot fired, and a few to find where the ranges start and what comes next.
        ("all", 5, 0, 5 + 2),
        ("latest", 1, 4, 4),
        ("none", 0, 5, 5),  # 12:00:30 is 30 s late for 12:00: not on time
    ],
)
@pytest.mark.parametrize("after_s", [NOW_S - YEAR_S, 0], ids=["a year", "since 1970"])
def test_a_long_backlog_walks_only_what_fires(
    catchup: str, fire: int, skipped: int, most_steps: int, after_s: int
) -> None:
    trigger = CountedSteps(cron("* * * * *"))
    job = job_on(trigger, catchup, 300)
    decision = decide(job, after_s, NOW_S)
    assert len(decision.fire) == fire
    stale = (NOW_S - 301) // 60 - after_s // 60  # whole minutes in (after_s, now - grace - 1]
    first_s, last_s = (after_s // 60 + 1) * 60, (NOW_S - 301) // 60 * 60
    assert decision.missed[0] == MissedRange("job", first_s, last_s, stale, "misfire_grace")
    assert sum(gap.count for gap in decision.missed[1:]) == skipped
    assert trigger.steps <= most_steps


@pytest.mark.parametrize("catchup", ["all", "latest", "none"])
@pytest.mark.parametrize("late_s", [0, 1, 30])
def test_a_tick_with_one_slot_due_only_steps_twice(catchup: str, late_s: int) -> None:
    # The leader's usual tick: what it costs is what a burst of 100,000 jobs multiplies.
    trigger = CountedSteps(cron("* * * * *"))
    slot_s = NOW_S // 60 * 60
    decision = decide(job_on(trigger, catchup, 300), slot_s - 60, slot_s + late_s)
    on_time = catchup != "none" or late_s <= 1
    assert decision.fire == ((slot_s,) if on_time else ())
    assert decision.next_s == slot_s + 60
    assert (trigger.steps, trigger.searches) == (2, 0)


def test_a_year_of_a_minutely_cron_is_decided_in_milliseconds() -> None:
    # Walking took 5.7 s for a year and 7 minutes since 1970 (bench/catchup.py times it).
    job = job_on(cron("* * * * *", NEW_YORK), "latest", 300)
    decide(job, 0, NOW_S)  # the zone's periods since 1970, worked out once
    started = time.perf_counter()
    decide(job, 0, NOW_S)
    assert time.perf_counter() - started < 0.5
