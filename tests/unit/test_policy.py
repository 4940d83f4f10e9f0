"""The catch-up policy, as a pure function of (job, watermark, now)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobspec import JobSpec
from scheduler.policy import decide
from scheduler.records import MissedRange
from scheduler.triggers import AtTrigger, EveryTrigger

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z, a multiple of 10


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
