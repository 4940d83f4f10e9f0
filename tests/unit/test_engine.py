"""The engine's agenda, driven by hand-picked instants (no clock, no I/O)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.engine import Engine
from scheduler.jobspec import JobSpec
from scheduler.triggers import CronTrigger, EveryTrigger, compile_cron

T0 = 1_800_000_000


def job(name: str, seconds: int) -> JobSpec:
    return JobSpec(
        name=name,
        task="t",
        kind="every",
        schedule=f"{seconds}s",
        timezone=ZoneInfo("UTC"),
        trigger=EveryTrigger(seconds, datetime(1970, 1, 1, tzinfo=UTC)),
        misfire_grace=timedelta(minutes=5),
    )


def fired(engine: Engine, now_s: int) -> list[tuple[str, int]]:
    return [(spec.name, slot) for spec, slot in engine.take_due(now_s).fires]


def test_fires_each_job_at_its_slots_in_slot_order() -> None:
    engine = Engine({"a": job("a", 2), "b": job("b", 3)})
    engine.load({"a": T0, "b": T0})
    assert engine.next_slot_s() == T0 + 2
    assert fired(engine, T0 + 1) == []
    assert fired(engine, T0 + 2) == [("a", T0 + 2)]
    assert fired(engine, T0 + 6) == [("b", T0 + 3), ("a", T0 + 4), ("a", T0 + 6), ("b", T0 + 6)]
    assert engine.next_slot_s() == T0 + 8


def test_a_job_without_watermark_is_not_scheduled() -> None:
    engine = Engine({"a": job("a", 1), "new": job("new", 1)})
    engine.load({"a": T0})
    assert fired(engine, T0 + 1) == [("a", T0 + 1)]


def test_reload_keeps_watermarks_of_jobs_that_stay() -> None:
    engine = Engine({"a": job("a", 10)})
    engine.load({"a": T0})
    assert fired(engine, T0 + 10) == [("a", T0 + 10)]
    engine.replace_jobs({"a": job("a", 10), "b": job("b", 5)}, {"b": T0 + 12})
    assert fired(engine, T0 + 20) == [("b", T0 + 15), ("a", T0 + 20), ("b", T0 + 20)]


def test_removed_job_stops_firing() -> None:
    engine = Engine({"a": job("a", 1), "b": job("b", 1)})
    engine.load({"a": T0, "b": T0})
    engine.replace_jobs({"a": job("a", 1)}, {})
    assert fired(engine, T0 + 1) == [("a", T0 + 1)]


def test_a_year_of_new_york_dst_through_the_engine_in_milliseconds() -> None:
    zone = ZoneInfo("America/New_York")
    nightly = JobSpec(
        name="nightly",
        task="t",
        kind="cron",
        schedule="30 2 * * *",
        timezone=zone,
        trigger=CronTrigger(compile_cron("30 2 * * *", "nightly"), zone),
    )
    engine = Engine({"nightly": nightly})
    start = int(datetime(2026, 1, 1, tzinfo=zone).timestamp())
    end = int(datetime(2027, 1, 1, tzinfo=zone).timestamp())
    engine.load({"nightly": start})
    fires = []
    while (slot := engine.next_slot_s()) is not None and slot < end:
        fires += [s for _, s in engine.take_due(slot).fires]  # wake exactly at each slot
    local = [datetime.fromtimestamp(s, zone) for s in fires]
    assert len(fires) == 365
    assert {(t.hour, t.minute) for t in local} == {(2, 30), (3, 0)}
    # The gap day runs once, right after the gap; every other day at 02:30.
    assert [t.date().isoformat() for t in local if t.hour == 3] == ["2026-03-08"]


def test_a_burst_keeps_every_job_on_its_own_agenda() -> None:
    # 1,000 jobs on one schedule, all due together (the agenda is rebuilt in one go), beside
    # 10 hourly jobs not due yet and one job catching up on missed slots.
    jobs = {f"j{i:04d}": job(f"j{i:04d}", 10) for i in range(1000)}
    jobs |= {f"hourly{i}": job(f"hourly{i}", 3600) for i in range(10)}
    jobs["late"] = job("late", 5)
    engine = Engine(jobs)
    engine.load(dict.fromkeys(jobs, T0) | {"late": T0 - 10})
    tens = [(f"j{i:04d}", T0 + 10) for i in range(1000)]
    assert fired(engine, T0 + 10) == [
        ("late", T0 - 5), ("late", T0), ("late", T0 + 5), *tens, ("late", T0 + 10),
    ]  # fmt: skip
    assert engine.next_slot_s() == T0 + 15
    assert fired(engine, T0 + 15) == [("late", T0 + 15)]
    assert fired(engine, T0 + 20) == [(name, T0 + 20) for name, _ in tens] + [("late", T0 + 20)]
    assert engine.next_slot_s() == T0 + 25
    hourly = sorted((spec.name, slot) for spec, slot in engine.upcoming(T0 + 3600))[:10]
    assert hourly == [(f"hourly{i}", T0 + 3600) for i in range(10)]
