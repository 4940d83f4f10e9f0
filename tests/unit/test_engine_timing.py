"""The engine with jitter and enabled = false, driven by hand-picked instants."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.engine import Engine
from scheduler.jitter import jitter_s
from scheduler.jobspec import JobSpec
from scheduler.records import MissedRange
from scheduler.triggers import EveryTrigger
from scheduler.triggers.bounded import bounded

T0 = 1_800_000_000  # a multiple of 60


def job(name: str, seconds: int, **options: object) -> JobSpec:
    spec = JobSpec(
        name=name,
        task="t",
        kind="every",
        schedule=f"{seconds}s",
        timezone=ZoneInfo("UTC"),
        trigger=EveryTrigger(seconds, datetime(1970, 1, 1, tzinfo=UTC)),
        misfire_grace=timedelta(minutes=5),
    )
    return replace(spec, **options)


def fired(engine: Engine, now_s: int) -> list[tuple[str, int]]:
    return [(spec.name, slot) for spec, slot in engine.take_due(now_s).fires]


JITTER = timedelta(seconds=30)
DELAY = jitter_s("report", T0 + 60, 30, T0 + 120)


def test_a_jittered_fire_is_sent_at_slot_plus_its_delay_under_its_slot() -> None:
    assert DELAY == 14
    engine = Engine({"report": job("report", 60, jitter=JITTER), "plain": job("plain", 60)})
    engine.load({"report": T0, "plain": T0})
    assert engine.next_slot_s() == T0 + 60
    assert fired(engine, T0 + 60) == [("plain", T0 + 60)]
    assert engine.next_slot_s() == T0 + 60 + DELAY
    assert engine.upcoming(T0 + 60 + DELAY) == [(engine.jobs["report"], T0 + 60)]
    assert engine.next_slots({"report"}) == {"report": T0 + 60}
    assert fired(engine, T0 + 60 + DELAY - 1) == []
    assert fired(engine, T0 + 60 + DELAY) == [("report", T0 + 60)]
    following = jitter_s("report", T0 + 120, 30, T0 + 180)
    assert sorted(engine._heap) == [(T0 + 120, "plain"), (T0 + 120 + following, "report")]


def test_a_jittered_job_is_not_late_because_of_its_jitter() -> None:
    # catchup = "none" fires only slots at most 1 s late: judged from the send, not the slot.
    spec = job("report", 60, jitter=JITTER, catchup="none", misfire_grace=timedelta(seconds=5))
    engine = Engine({"report": spec})
    engine.load({"report": T0})
    due = engine.take_due(T0 + 60 + DELAY + 1)
    assert [(j.name, s) for j, s in due.fires] == [("report", T0 + 60)]
    assert due.missed == []


def test_a_late_jittered_fire_is_judged_by_how_late_its_send_is() -> None:
    spec = job("report", 60, jitter=JITTER, catchup="none")
    engine = Engine({"report": spec})
    engine.load({"report": T0})
    due = engine.take_due(T0 + 60 + DELAY + 10)  # the send is 10 s late
    assert due.fires == []
    assert [(m.first_s, m.count, m.reason) for m in due.missed] == [(T0 + 60, 1, "catchup=none")]


def test_the_delay_never_reaches_the_next_slot() -> None:
    engine = Engine({f"j{i}": job(f"j{i}", 5, jitter=timedelta(hours=1)) for i in range(200)})
    engine.load({f"j{i}": T0 for i in range(200)})
    sends = [send_s for send_s, _ in engine._heap]
    assert min(sends) >= T0 + 5
    assert max(sends) < T0 + 10


def test_a_new_leader_sends_a_pending_jittered_slot_once_at_its_time() -> None:
    # The old leader claimed up to T0; it dies at T0 + 65, inside the jitter window.
    engine = Engine({"report": job("report", 60, jitter=JITTER)})
    engine.load({"report": T0})  # what adoption reads from Redis
    assert fired(engine, T0 + 65) == []
    assert fired(engine, T0 + 60 + DELAY) == [("report", T0 + 60)]
    assert fired(engine, T0 + 60 + DELAY) == []


def test_jobs_without_jitter_keep_the_plain_agenda() -> None:
    engine = Engine({"a": job("a", 60), "b": job("b", 60, jitter=timedelta(seconds=1))})
    engine.load({"a": T0, "b": T0})
    assert engine._nominal == {}  # a 1 s window holds only 0: no jitter bookkeeping
    assert fired(engine, T0 + 60) == [("a", T0 + 60), ("b", T0 + 60)]


def test_a_disabled_job_never_fires_and_misses_nothing() -> None:
    engine = Engine({"off": job("off", 10, enabled=False), "on": job("on", 10)})
    engine.load({"off": T0, "on": T0})
    due = engine.take_due(T0 + 3600)
    assert {j.name for j, _ in due.fires} == {"on"}
    assert [m.job for m in due.missed] == ["on"]  # only the enabled job's old slots
    assert engine.next_slots({"off", "on"}) == {"on": T0 + 3610}
    assert engine.watermarks["off"] == T0  # kept, untouched


def test_enabled_again_it_starts_from_now() -> None:
    engine = Engine({"job": job("job", 10, enabled=False)})
    engine.load({"job": T0})
    assert fired(engine, T0 + 100) == []
    engine.replace_jobs({"job": job("job", 10)}, {})  # a reload at T0 + 103
    due = engine.take_due(T0 + 103)
    assert due.fires == []
    # The disabled time's 10 slots: one range, written with the watermark by the claim.
    assert due.missed == [MissedRange("job", T0 + 10, T0 + 100, 10, "disabled")]
    assert engine.watermarks["job"] == T0 + 103
    assert engine.next_slot_s() == T0 + 110
    assert fired(engine, T0 + 110) == [("job", T0 + 110)]


def test_disabled_by_a_reload_it_stops_and_keeps_its_watermark() -> None:
    engine = Engine({"job": job("job", 10)})
    engine.load({"job": T0})
    assert fired(engine, T0 + 10) == [("job", T0 + 10)]
    engine.replace_jobs({"job": job("job", 10, enabled=False)}, {})
    assert engine.next_slot_s() is None
    assert fired(engine, T0 + 60) == []
    engine.replace_jobs({"job": job("job", 10)}, {})
    assert fired(engine, T0 + 61) == []
    assert fired(engine, T0 + 70) == [("job", T0 + 70)]


def test_an_ended_job_leaves_the_agenda() -> None:
    start = datetime.fromtimestamp(T0 + 10, UTC)
    spec = job("three", 10)
    spec = replace(spec, trigger=bounded(spec.trigger, start, None, 3))
    engine = Engine({"three": spec})
    engine.load({"three": T0})
    assert fired(engine, T0 + 100) == [("three", T0 + 10), ("three", T0 + 20), ("three", T0 + 30)]
    assert engine.next_slot_s() is None
