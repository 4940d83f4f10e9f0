"""start, end, max_runs, enabled and jitter on in-process nodes (a real Node on a private
redis-server, turned by hand with a ManualClock): what reaches the broker, under which slot."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.config import load_config
from scheduler.jitter import jitter_s
from scheduler.listing import JobFacts, job_rows
from scheduler.wire import slot_text, task_id
from tests.clocks import ManualClock
from tests.node.conftest import QUEUE, Rig, whole_second_clock

RigFactory = Callable[..., Rig]

pytestmark = pytest.mark.timeout(60)


def every(interval: str, **options: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": interval, "queue": QUEUE, **options}


def now_s(rig: Rig) -> int:
    return int(rig.clock.wall_s)


def reload(rig: Rig) -> None:
    rig.node.request_reload()
    rig.node.turn()
    pending = rig.node._reloading
    if pending is not None:  # else the read ended within that turn and was applied there
        assert pending.wait(10)
    rig.tick(0)


def missed(rig: Rig) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in rig.redis.xrange(rig.node.keys.missed)]  # type: ignore[union-attr]


def messages(rig: Rig) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in rig.redis.lrange(QUEUE, 0, -1)[::-1]]  # type: ignore[union-attr]


def row(rig: Rig, name: str) -> dict[str, Any]:
    jobs = {name: (rig.node.jobs[name], "config")}
    return job_rows(jobs, rig.clock.wall_s, JobFacts())[0]


def test_a_job_fires_nothing_after_its_end_and_is_listed_as_ended(
    rig_factory: RigFactory,
) -> None:
    clock = whole_second_clock()
    first = int(clock.wall_s)
    rig = rig_factory(
        {"until": every("1s", end=slot_text(first + 3))}, clock=clock, max_clock_offset="1m"
    )  # 6 s ahead of the real time by its end
    rig.lead()
    for _ in range(6):
        rig.tick()
    assert rig.fired() == [("until", slot_text(first + s)) for s in (1, 2, 3)]
    assert rig.node.engine is not None
    assert rig.node.engine.next_slot_s() is None
    listed = row(rig, "until")
    assert (listed["next_run"], listed["note"]) == (None, "ended")
    assert missed(rig) == []


def test_max_runs_fires_exactly_that_many_then_stops(rig_factory: RigFactory) -> None:
    clock = whole_second_clock()
    start = int(clock.wall_s) + 2
    rig = rig_factory(
        {"thrice": every("1s", start=slot_text(start), max_runs=3)}, clock=clock,
        max_clock_offset="1m",
    )  # fmt: skip
    rig.lead()
    for _ in range(8):
        rig.tick()
    assert rig.fired() == [("thrice", slot_text(start + s)) for s in (0, 1, 2)]
    listed = row(rig, "thrice")
    assert (listed["next_run"], listed["note"]) == (None, "ended (3 runs)")


def test_a_disabled_job_fires_nothing_misses_nothing_and_is_listed_as_disabled(
    rig_factory: RigFactory,
) -> None:
    rig = rig_factory({"off": every("1s", enabled=False), "on": every("1s")})
    rig.lead()
    for _ in range(3):
        rig.tick()
    assert {job for job, _ in rig.fired()} == {"on"}
    assert missed(rig) == []
    listed = row(rig, "off")
    assert (listed["next_run"], listed["note"]) == (None, "disabled")


def test_enabled_again_by_a_reload_it_starts_from_now(rig_factory: RigFactory) -> None:
    # catchup = "all" with a long grace: the watermark rule alone would fire the whole gap.
    table = every("1s", enabled=False, misfire_grace="1h")
    rig = rig_factory({"job": table}, max_clock_offset="1m")  # the test runs 7 s ahead
    rig.lead()
    for _ in range(4):
        rig.tick()
    assert rig.fired() == []
    rig.path.write_text(rig.path.read_text().replace("enabled = false", "enabled = true"))
    reloaded_at = now_s(rig)
    reload(rig)
    assert rig.node.jobs["job"].enabled
    # The disabled time is one range, and the watermark in Redis moved past it at once: a
    # leader taking over now (before the job fires again) fires none of it either.
    [gap] = missed(rig)
    assert (gap[b"job"], gap[b"reason"], gap[b"last"]) == (
        b"job",
        b"disabled",
        str(reloaded_at).encode(),
    )
    assert int(gap[b"count"]) == reloaded_at - int(gap[b"first"]) + 1
    assert rig.redis.hget(rig.node.keys.watermarks, "job") == str(reloaded_at).encode()
    for _ in range(2):
        rig.tick()
    assert rig.fired() == [("job", slot_text(reloaded_at + s)) for s in (1, 2)]


def test_enabled_again_then_a_failover_before_it_fires_fires_none_of_its_disabled_time(
    rig_factory: RigFactory,
) -> None:
    table = every("1s", enabled=False, misfire_grace="1h")
    clock = whole_second_clock()
    old = rig_factory({"job": table}, name="a.toml", node_id="n1", clock=clock,
                      max_clock_offset="1m")  # fmt: skip
    new = rig_factory({"job": table}, name="b.toml", node_id="n2", clock=clock,
                      max_clock_offset="1m")  # fmt: skip
    old.lead()
    for _ in range(4):
        old.tick()
    old.path.write_text(old.path.read_text().replace("enabled = false", "enabled = true"))
    enabled_at = now_s(old)
    reload(old)  # its claim writes the disabled range and the watermark; then it dies
    assert old.fired() == []
    old.redis.delete(old.node.keys.lease)
    new.path.write_text(new.path.read_text().replace("enabled = false", "enabled = true"))
    new.node.config = load_config(new.path)
    new.node.jobset.refresh(new.node.config, force=True)
    new.lead()  # adopts the watermark the old leader wrote
    new.tick()
    assert new.fired() == [("job", slot_text(enabled_at + 1))]  # nothing older


def jittered_job(clock: ManualClock) -> tuple[str, int, int]:
    """A job name whose delay at the next minute leaves room to act inside it (the slot is
    the real time's next minute, so the name is picked for it), that slot and its delay."""
    now = int(clock.wall_s)
    slot = now - now % 60 + 60
    for index in range(100):
        name = f"report-{index}"
        delay = jitter_s(name, slot, 30, slot + 60)
        if delay >= 3:
            return name, slot, delay
    raise AssertionError("no name with a delay of 3 s or more")


def jittered_rig(
    rig_factory: RigFactory, clock: ManualClock, name: str, file: str, node_id: str
) -> Rig:
    # Jitter moves sends up to 90 s past the real time: the fence allows it with this offset.
    return rig_factory(
        {name: every("60s", jitter="30s")}, name=file, node_id=node_id, clock=clock,
        max_clock_offset="3m",
    )  # fmt: skip


def test_a_jittered_fire_is_sent_at_slot_plus_delay_under_its_nominal_identity(
    rig_factory: RigFactory,
) -> None:
    clock = whole_second_clock()
    name, slot, delay = jittered_job(clock)
    rig = jittered_rig(rig_factory, clock, name, "a.toml", "n1")
    rig.lead()
    rig.tick(slot + delay - 1 - now_s(rig))
    assert rig.fired() == []
    rig.tick()
    assert now_s(rig) == slot + delay
    [message] = messages(rig)
    assert message["headers"]["scheduler_slot"] == slot_text(slot)
    assert message["headers"]["id"] == task_id(rig.node.keys.namespace, name, slot)
    assert rig.redis.hget(rig.node.keys.watermarks, name) == str(slot).encode()


def test_a_leader_dying_inside_the_jitter_window_the_next_one_sends_it_once(
    rig_factory: RigFactory,
) -> None:
    clock = whole_second_clock()
    name, slot, delay = jittered_job(clock)
    old = jittered_rig(rig_factory, clock, name, "a.toml", "n1")
    new = jittered_rig(rig_factory, clock, name, "b.toml", "n2")
    old.lead()
    old.tick(slot + 1 - now_s(old))  # past the slot, before its send
    assert old.fired() == []
    old.redis.delete(old.node.keys.lease)  # the old leader dies: its lease runs out
    new.lead()  # adopts the watermark from before the slot
    new.tick(slot + delay - 1 - now_s(new))
    assert new.fired() == []
    new.tick()
    new.tick()
    assert new.fired() == [(name, slot_text(slot))]
