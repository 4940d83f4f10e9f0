"""Operator fires without I/O: slot ranges, bounds, task ids and kinds, skips, reasons."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.jobspec import JobSpec, build_job
from scheduler.manual import (
    IN_HISTORY,
    RUN_CLAIMED,
    Fire,
    TooManySlots,
    catchup_range,
    manual_fire,
    needs_confirmation,
    plan_fires,
    reason_problem,
    slot_problem,
    slots_after,
    slots_between,
    whole_second,
    window_problem,
)
from scheduler.wire import manual_task_id, task_id

NS = "t"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def make_job(name: str = "tick", **table: object) -> JobSpec:
    problems: list[str] = []
    job = build_job(Path("test.toml"), name, {"task": "jobs.examples.ping", **table},
                    zoneinfo.ZoneInfo("UTC"), problems, NS)  # fmt: skip
    assert job is not None, problems
    return job


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


EVERY_MINUTE = {"every": "1m", "start": "2026-01-01T00:00:00Z"}


def test_a_range_includes_both_ends() -> None:
    job = make_job(**EVERY_MINUTE)
    assert slots_between(job, at(T0), at(T0 + 180), 100) == [T0, T0 + 60, T0 + 120, T0 + 180]


def test_a_range_between_slots_holds_the_slots_inside() -> None:
    job = make_job(**EVERY_MINUTE)
    assert slots_between(job, at(T0 + 0.5), at(T0 + 179.9), 100) == [T0 + 60, T0 + 120]
    assert slots_between(job, at(T0 + 1), at(T0 + 59), 100) == []


def test_a_reversed_range_is_empty() -> None:
    job = make_job(**EVERY_MINUTE)
    assert slots_between(job, at(T0 + 60), at(T0), 100) == []


def test_a_range_at_the_limit_is_walked_one_past_is_refused_with_its_count() -> None:
    job = make_job(**EVERY_MINUTE)
    assert len(slots_between(job, at(T0), at(T0 + 99 * 60), 100)) == 100
    with pytest.raises(TooManySlots) as raised:
        slots_between(job, at(T0), at(T0 + 100 * 60), 100)
    assert (raised.value.count, raised.value.limit) == (101, 100)


def test_a_huge_range_is_counted_not_walked() -> None:
    job = make_job(every="1s", start="2026-01-01T00:00:00Z")
    # 100 years of seconds: refused at once with the exact count.
    with pytest.raises(TooManySlots) as raised:
        slots_between(job, at(T0), at(T0 + 3_155_760_000), 10_000)
    assert raised.value.count == 3_155_760_001


def test_cron_range_in_a_zone_across_the_dst_change() -> None:
    # 02:30 daily in Berlin: on 2026-03-29 02:30 does not exist (clocks jump 02:00 -> 03:00).
    job = make_job(cron="30 2 * * *", timezone="Europe/Berlin")
    slots = slots_between(job, at(1_774_656_000), at(1_774_915_200), 100)  # 03-28 .. 03-31 00Z
    assert [datetime.fromtimestamp(s, UTC).isoformat() for s in slots] == [
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:00:00+00:00",  # the gap's slot runs at 03:00 CEST
        "2026-03-30T00:30:00+00:00",
    ]


def test_slots_after_excludes_the_lower_bound() -> None:
    job = make_job(**EVERY_MINUTE)
    assert slots_after(job, T0, T0 + 120, 100) == [T0 + 60, T0 + 120]
    assert slots_after(job, T0 + 120, T0 + 120, 100) == []


def test_catchup_range_from_the_pause_watermark_to_the_resume_watermark() -> None:
    assert catchup_range(T0, T0 + 30.5, T0 + 300) == (T0, T0 + 300)
    # Without a watermark at the pause, nothing had been claimed: from the pause itself.
    assert catchup_range(None, T0 + 30.5, T0 + 300) == (T0 + 30, T0 + 300)
    # Nothing skipped: no leader ran, or the watermark never moved.
    assert catchup_range(T0, T0 + 30.5, T0) is None
    assert catchup_range(T0, T0 + 30.5, None) is None


def test_plan_skips_fired_and_claimed_slots_and_names_why() -> None:
    slots = [T0, T0 + 60, T0 + 120, T0 + 180]
    claimed = {task_id(NS, "tick", T0 + 120)}
    plan = plan_fires(NS, "tick", slots, "backfill", fired={T0 + 60}, claimed=claimed)
    assert plan.send == [
        Fire("tick", T0, task_id(NS, "tick", T0), "backfill"),
        Fire("tick", T0 + 180, task_id(NS, "tick", T0 + 180), "backfill"),
    ]
    assert [(s.slot_s, s.reason) for s in plan.skipped] == [
        (T0 + 60, IN_HISTORY), (T0 + 120, RUN_CLAIMED),
    ]  # fmt: skip
    assert [(r["slot"], r["action"], r["reason"]) for r in plan.records()] == [
        ("2026-01-01T00:00:00Z", "send", None),
        ("2026-01-01T00:01:00Z", "skip", "already fired (history)"),
        ("2026-01-01T00:02:00Z", "skip", "already ran (run claim)"),
        ("2026-01-01T00:03:00Z", "send", None),
    ]


def test_a_backfilled_slot_has_the_scheduled_id_a_trigger_never_does() -> None:
    (fire,) = plan_fires(NS, "tick", [T0], "backfill").send
    assert fire.task_id == task_id(NS, "tick", T0)
    first, second = manual_fire(NS, "tick", T0, 1), manual_fire(NS, "tick", T0, 2)
    assert first.kind == second.kind == "manual"
    assert first.task_id == manual_task_id(NS, "tick", "2026-01-01T00:00:00Z", 1)
    assert len({fire.task_id, first.task_id, second.task_id}) == 3


def test_whole_second_rounds_down() -> None:
    assert whole_second(at(T0 + 0.999)) == T0
    assert whole_second(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)) == -1


def test_slot_bounds() -> None:
    assert slot_problem(0) is None
    assert slot_problem(253_402_300_799) is None
    expected = "expected an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
    assert slot_problem(-1) == expected
    assert slot_problem(253_402_300_800) == expected


def test_window_problems_exact_lines() -> None:
    now_s = T0 + 1000.0
    assert window_problem(at(T0), at(T0 + 1000), now_s) is None
    assert window_problem(at(T0 + 60), at(T0), now_s) == (
        "--from 2026-01-01T00:01:00+00:00 is later than --to 2026-01-01T00:00:00+00:00"
    )
    assert window_problem(at(T0), at(T0 + 1001), now_s) == (
        "--to 2026-01-01T00:16:41+00:00 is later than now (2026-01-01T00:16:40Z): backfill "
        "covers past slots; the scheduler fires the rest"
    )
    assert window_problem(datetime(1960, 1, 1, tzinfo=UTC), at(T0), now_s) == (
        "--from: expected an instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
    )


def test_reason_bounds() -> None:
    assert reason_problem("") is None
    assert reason_problem("x" * 200) is None
    assert reason_problem("x" * 201) == "--reason: at most 200 characters, got 201"
    line = "--reason: printable text only (no control characters or line breaks)"
    assert reason_problem("a\nb") == line
    assert reason_problem("\x1b[2J") == line


def test_confirmation_above_the_threshold_unless_yes() -> None:
    assert not needs_confirmation(100, assume_yes=False)
    assert needs_confirmation(101, assume_yes=False)
    assert not needs_confirmation(101, assume_yes=True)
