"""The leader loop in process, against the faults fault injection found (issue 8).

Each test writes the wrong value, steps the clock or passes the deadline the way the fault was
found, then asserts exactly which (job, slot) reached the broker, how many times, and what the
log says. The broker is the state's Redis (one atomic claim-and-LPUSH) unless a test says
otherwise; `Rig.fired()` reads the queue list.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from scheduler import cli
from scheduler.records import ClaimReply
from scheduler.wire import slot_text
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]


def every_second(queue: str = QUEUE, **extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": queue, **extra}


def slots(rig: Rig, *offsets: int) -> list[str]:
    """Slot texts at these whole seconds after the rig's start."""
    start = int(rig.clock.wall_s)
    return [slot_text(start + offset) for offset in offsets]


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= level]


# -- case 1: one wrong-typed key wedged the cluster --------------------------------------------


@pytest.mark.parametrize("outbox", [False, True], ids=["same-redis", "outbox"])
def test_a_wrong_type_at_paused_is_moved_aside_and_every_job_fires(
    rig_factory: RigFactory,
    redis_server: Any,
    caplog: pytest.LogCaptureFixture,
    outbox: bool,
) -> None:
    broker = redis_server.url.replace("/0", "/1") if outbox else None
    rig = rig_factory({"a": every_second(), "b": every_second()}, broker_url=broker)
    rig.lead()
    rig.redis.set("it:paused", "x")
    rig.tick()
    rig.tick()
    sent = rig.outbox() if outbox else rig.fired()
    first, second = slots(rig, -1, 0)  # the clock moved 2 s; slots at start+1 and start+2
    assert sorted(sent) == sorted([("a", first), ("b", first), ("a", second), ("b", second)])
    [moved] = rig.redis.keys("it:paused:corrupt:*")
    assert rig.redis.get(moved) == b"x"
    assert (
        f"key it:paused held a string, not what the scheduler writes there: moved to "
        f"{moved.decode()} to inspect; which jobs were paused is unknown: every job fires until "
        "paused again" in messages(caplog)
    )


# -- cases 1 and 2: a wrong value of one job quarantines that job only ----------------------


def test_a_queue_key_of_the_wrong_type_quarantines_its_job_and_the_rest_fire_on_time(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory(
        {"a": every_second(queue="broken", misfire_grace="1m"), "b": every_second()},
        max_clock_offset="1h",  # the manual clock runs ahead of Redis's by the test's ticks
    )
    rig.redis.set("broken", "not a list")
    rig.lead()
    for _ in range(5):
        rig.tick()
    assert rig.fired() == [("b", slot) for slot in slots(rig, -4, -3, -2, -1, 0)]
    assert rig.redis.get("broken") == b"not a list"
    line = (
        "job a quarantined: key broken holds a string, not a queue list, not what the scheduler "
        "wrote; its slots are not fired (tried again every 10s; what falls due meanwhile is "
        "caught up by its policy or recorded as missed); every other job goes on"
    )
    assert messages(caplog).count(line) == 1  # said once, however many ticks
    record = rig.node.store.quarantined()
    assert set(record) == {"a"}
    assert (record["a"]["key"], record["a"]["found"]) == ("broken", "a string, not a queue list")
    assert rig.node.heartbeat.record()["quarantined"] == ["a"]
    # Fixed: at its next retry the job fires again and catches up what fell due meanwhile.
    rig.redis.delete("broken")
    for _ in range(6):
        rig.tick()
    assert Counter(rig.fired("broken")) == Counter(
        ("a", slot) for slot in slots(rig, *range(-10, 1))
    )
    assert rig.node.store.quarantined() == {}
    assert "job a fires again: its value in Redis is readable now" in messages(caplog, logging.INFO)


@pytest.mark.parametrize("garbage", ["999999999999", "1e300", "inf"])
def test_an_out_of_range_watermark_restarts_the_job_from_now_without_a_crash(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture, garbage: str
) -> None:
    """Case 3: before, every node that took the lease died with `year ... is out of range`."""
    rig = rig_factory({"a": every_second(), "b": every_second()})
    rig.redis.hset("it:watermarks", "a", garbage)
    rig.lead()
    rig.tick()
    first = slots(rig, 0)[0]
    assert sorted(rig.fired()) == [("a", first), ("b", first)]
    [record] = rig.node.store.recorded_missed()
    assert (record["job"], record["found"]) == ("a", garbage)
    assert record["reason"] in ("watermark_out_of_range", "watermark_unreadable")
    assert any(line.startswith("watermark of a in Redis was") for line in messages(caplog))
    # The same garbage written while leading: the claim refuses it, the job restarts from now.
    rig.redis.hset("it:watermarks", "b", garbage)
    rig.tick()
    rig.tick()
    assert Counter(rig.fired())[("a", slots(rig, 0)[0])] == 1
    assert ("b", slots(rig, 0)[0]) in rig.fired()


# -- case 5: a forward clock step on the leader fired the future ----------------------------


def test_a_clock_step_makes_the_leader_step_down_and_fire_nothing_early(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second(misfire_grace="1m")})
    rig.lead()
    rig.tick()
    assert rig.fired() == [("a", slots(rig, 0)[0])]
    before = rig.redis.hgetall("it:watermarks")
    rig.clock.wall_s += 3600  # a bad NTP step: wall time only
    rig.node.turn()
    assert rig.fired() == [("a", slots(rig, -3600)[0])]  # nothing more, nothing early
    assert rig.redis.hgetall("it:watermarks") == before
    assert rig.node.lease.value is None
    assert not rig.redis.exists("it:lease")  # handed over at once
    # 3600 s, give or take the real time the manual clock does not follow.
    stepped = re.compile(r"clock is \+(3599|3600|3601)\.\d+s off Redis TIME .*stepping down")
    assert any(stepped.search(line) for line in messages(caplog))
    assert not rig.node.may_lead()
    # The clock is fixed: the node leads again, and the job fires on time from there.
    rig.clock.wall_s -= 3600
    rig.lead()
    rig.tick()
    assert rig.fired() == [("a", slot) for slot in slots(rig, -1, 0)]


def test_the_claim_script_refuses_the_future_even_when_the_node_does_not_check(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The fence, not the node's own check, is what bounds a step: with the node's check off,
    a slot is claimed only up to Redis TIME + max_clock_offset, never an hour early."""
    rig = rig_factory({"a": every_second(misfire_grace="2h")}, max_clock_offset="1s")
    rig.lead()
    start = int(rig.clock.wall_s)
    rig.node.max_offset_s = 1e9  # switch the node's own clock check off
    rig.clock.wall_s += 3600
    before = int(time.time())
    rig.node.turn()
    after = int(time.time())
    fired = rig.fired()
    last = start + len(fired)
    assert fired == [("a", slot_text(slot)) for slot in range(start + 1, last + 1)]
    assert before + 1 <= last <= after + 1  # exactly the slots up to Redis TIME + 1 s
    assert rig.node.store.watermarks() == {"a": last}
    assert rig.node.store.recorded_missed() == []  # no future slots recorded as missed
    assert rig.node.lease.value is None
    assert any("refused as later than Redis TIME allows" in line for line in messages(caplog))


# -- case 6: a handed-back burst was lost ---------------------------------------------------


def test_slots_handed_back_between_chunks_fire_once_the_lease_is_renewed(
    rig_factory: RigFactory,
) -> None:
    jobs = {f"j{index:04d}": every_second(misfire_grace="1m") for index in range(2500)}
    rig = rig_factory(jobs)
    rig.lead()
    claim = rig.node.claims.claim
    calls = 0

    def deadline_passes_after_the_first_chunk(*args: Any, **kwargs: Any) -> ClaimReply:
        nonlocal calls
        calls += 1
        reply = claim(*args, **kwargs)
        if calls == 1:
            rig.clock.mono_s += 10  # the lease deadline passes between two chunks
        return reply

    rig.node.claims.claim = deadline_passes_after_the_first_chunk  # type: ignore[method-assign]
    rig.clock.advance(1)
    rig.node.turn()
    assert len(rig.fired()) == 1000  # one chunk, the rest handed back
    rig.node.claims.claim = claim  # type: ignore[method-assign]
    assert rig.node.lease.renew()  # the renewal succeeds: the node leads on
    rig.node.turn()
    fired = Counter(rig.fired())
    slot = slots(rig, 0)[0]
    assert fired == Counter((name, slot) for name in jobs)


# -- the fence alone -------------------------------------------------------------------------


def test_a_node_whose_lease_was_taken_over_is_refused_by_redis_alone(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    old = rig_factory({"a": every_second()}, node_id="old", name="old.toml")
    new = rig_factory({"a": every_second()}, node_id="new", name="new.toml", clock=old.clock)
    old.lead()
    old.node.check_own_deadline = False  # only the fence in Redis may stop it now
    assert old.node.lease.value is not None
    old.redis.delete("it:lease")  # the lease ended (as a TTL would end it) ...
    new.lead()  # ... and another node took it
    old.clock.advance(1)
    old.node.turn()
    assert old.fired() == []
    assert old.node.lease.value is None  # it stepped down
    assert "lease lost: claim refused by the fencing check; standing by" in messages(
        caplog, logging.WARNING
    )
    new.node.turn()
    assert new.fired() == [("a", slots(new, 0)[0])]


# -- what an operator sees -------------------------------------------------------------------


def test_status_and_jobs_list_show_the_quarantine(rig_factory: RigFactory) -> None:
    rig = rig_factory({"a": every_second(queue="broken"), "b": every_second()})
    rig.redis.set("broken", "not a list")
    rig.lead()
    rig.tick()
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["jobs", "list", "--json", "-c", str(rig.path)])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["a"]["quarantined"] == "key broken holds a string, not a queue list"
    assert rows["b"]["quarantined"] is None
    shown = runner.invoke(cli.app, ["status", "-c", str(rig.path)])
    assert shown.exit_code == 0, shown.output
    assert (
        "QUARANTINED: a: key broken holds a string, not a queue list (not fired until it is "
        "fixed)" in shown.stdout.splitlines()
    )
    as_json = json.loads(runner.invoke(cli.app, ["status", "--json", "-c", str(rig.path)]).stdout)
    assert as_json["quarantined"]["a"]["key"] == "broken"


def test_an_error_no_rule_foresaw_is_logged_and_the_loop_goes_on_from_redis(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second(misfire_grace="1m")})
    rig.lead()
    engine = rig.node.engine
    assert engine is not None

    def broken(now_s: int) -> Any:
        raise RuntimeError("a bug in deciding")

    engine.take_due = broken  # type: ignore[method-assign]
    rig.clock.advance(1)
    assert rig.node.turn() == 1.0  # paused, not a tight loop
    assert rig.fired() == []
    assert any(
        r.getMessage().startswith("leader loop: unexpected error") and r.exc_info
        for r in caplog.records
    )
    rig.tick()  # a new engine, read from Redis: the slot missed by the error fires now
    assert rig.fired() == [("a", slot) for slot in slots(rig, -1, 0)]


def test_a_wrong_type_at_a_queue_many_jobs_share_is_one_problem_not_thousands(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """`SET shared x` under 2,000 jobs: one log line, one quarantine write, the rest fire."""
    jobs = {f"s{index:04d}": every_second(queue="shared") for index in range(2000)}
    rig = rig_factory({**jobs, "other": every_second()})
    rig.redis.set("shared", "x")
    for index in range(0, 2000, 2):  # and garbage watermarks for half of them
        rig.redis.hset("it:watermarks", f"s{index:04d}", "garbage")
    rig.lead()
    rig.tick()
    assert rig.fired() == [("other", slots(rig, 0)[0])]
    quarantined = [m for m in messages(caplog) if "quarantined" in m]
    assert quarantined == [
        "2000 jobs (" + ", ".join(sorted(jobs)[:20]) + " and 1980 more) quarantined: key "
        "shared holds a string, not a queue list, not what the scheduler wrote; its slots are "
        "not fired (tried again every 10s; what falls due meanwhile is caught up by its policy "
        "or recorded as missed); every other job goes on"
    ]
    resets = [m for m in messages(caplog) if m.startswith("watermark of")]
    assert len(resets) == 1
    assert resets[0].startswith("watermark of 1000 jobs (s0000, s0002,")
    assert len(rig.node.store.quarantined()) == 2000
