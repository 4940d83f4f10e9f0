"""Runtime jobs in a real node, turn by turn: added, edited and removed while it leads (applied
at the next look, within a second), loaded by a new leader, kept across a reload and while
Redis cannot be read; garbage skipped with one line; a config job shadows a runtime one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.config import load_config
from scheduler.connections import redis_client
from scheduler.store.runtime import POLL_S, Expect, RuntimeJobStore
from scheduler.wire import slot_text
from tests.conftest import free_port
from tests.integration.harness import write_config
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

pytestmark = pytest.mark.timeout(60)


def every_second(task: str = "jobs.examples.ping", **extra: object) -> dict[str, object]:
    return {"task": task, "every": "1s", "queue": QUEUE, **extra}


def store(rig: Rig) -> RuntimeJobStore:
    return RuntimeJobStore(rig.redis, rig.node.keys)


def add(rig: Rig, name: str, table: dict[str, Any], *, from_s: int) -> None:
    """Store a runtime job as `jobs add` does, added at `from_s` on the rig's clock."""
    assert store(rig).put(name, table, Expect.ANY).done
    # `jobs add` starts a new job at Redis TIME; the rig's clock is ahead of it by design.
    rig.redis.hset(rig.node.keys.watermarks, name, from_s)


def now_s(rig: Rig) -> int:
    return int(rig.clock.wall_s)


def slots_of(rig: Rig, job: str) -> list[str]:
    return [slot for name, slot in rig.fired() if name == job]


def seconds(*epoch_s: int) -> list[str]:
    return [slot_text(s) for s in epoch_s]


def said(caplog: pytest.LogCaptureFixture, part: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if part in r.getMessage()]


def test_a_job_added_while_leading_fires_at_the_next_tick(rig_factory: RigFactory) -> None:
    rig = rig_factory({"a": every_second()})
    rig.lead()
    start = now_s(rig)
    rig.tick()
    add(rig, "r", every_second(), from_s=start + 1)
    rig.tick()
    assert slots_of(rig, "r") == seconds(start + 2)
    assert rig.node.jobs.keys() == {"a", "r"}
    assert rig.node._describe()["jobs"] == 2
    rig.tick()
    assert slots_of(rig, "r") == seconds(start + 2, start + 3)
    assert slots_of(rig, "a") == seconds(start + 1, start + 2, start + 3)


def test_the_leader_looks_again_within_half_a_second_even_with_nothing_due(
    rig_factory: RigFactory,
) -> None:
    rig = rig_factory({"daily": {"task": "t", "cron": "0 0 1 1 *", "queue": QUEUE}})
    rig.lead()
    waits = []
    for _ in range(4):
        rig.clock.advance(0.2)
        waits.append(rig.node.turn())
    assert all(0 <= wait <= POLL_S for wait in waits), waits
    # A change just after a look is applied at the turn that wait ends in.
    add(rig, "r", every_second(), from_s=now_s(rig))
    rig.clock.advance(waits[-1])
    rig.node.turn()
    assert "r" in rig.node.jobs


def test_removed_jobs_stop_and_edited_ones_change_schedule(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    start = now_s(rig)
    add(rig, "r", every_second(), from_s=start)
    add(rig, "gone", every_second(), from_s=start)
    rig.lead()
    rig.tick()
    assert store(rig).remove("gone").done
    assert store(rig).put("r", {**every_second(), "every": "2s"}, Expect.ANY).done
    for _ in range(4):
        rig.tick()
    assert slots_of(rig, "gone") == seconds(start + 1)
    even = [s for s in range(start + 2, start + 6) if s % 2 == 0]
    assert slots_of(rig, "r") == seconds(start + 1, *even)
    assert rig.node.jobs.keys() == {"a", "r"}
    assert said(caplog, "runtime jobs changed") == [
        "runtime jobs changed: running 2 jobs (1 at run time)"
    ]


def test_a_new_leader_loads_runtime_jobs_before_adopting(rig_factory: RigFactory) -> None:
    rig = rig_factory({"a": every_second()})
    start = now_s(rig)
    add(rig, "r", every_second(task="t.runtime"), from_s=start - 2)
    rig.lead()  # the first turn: take over, adopting r's watermark from Redis
    assert rig.node.engine is not None
    assert rig.node.engine.watermarks["r"] == start  # caught up at once: start-1 and start
    assert slots_of(rig, "r") == seconds(start - 1, start)
    rig.tick()
    assert slots_of(rig, "r") == seconds(start - 1, start, start + 1)


def test_garbage_is_skipped_with_one_line_and_the_other_jobs_fire(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    start = now_s(rig)
    rig.redis.hset(rig.node.keys.runtime_jobs, "junk", "{oops")
    rig.redis.hset(
        rig.node.keys.runtime_jobs, "badcron", json.dumps({"task": "t", "cron": "0 25 * * *"})
    )
    add(rig, "r", every_second(), from_s=start)
    rig.lead()
    rig.tick()
    add(rig, "r2", every_second(), from_s=start + 1)  # the version moves: all are read again
    rig.tick()
    rig.tick()
    assert slots_of(rig, "r") == seconds(start + 1, start + 2, start + 3)
    assert slots_of(rig, "r2") == seconds(start + 2, start + 3)
    assert said(caplog, "runtime job skipped") == [
        "runtime job skipped: runtime: jobs.badcron.cron: hour 25 is out of range 0-23",
        "runtime job skipped: runtime: jobs.junk: '{oops', not a JSON job table",
    ]
    assert rig.node.jobs.keys() == {"a", "r", "r2"}


def test_redis_failing_while_polling_keeps_the_set(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    start = now_s(rig)
    add(rig, "r", every_second(), from_s=start)
    rig.lead()
    watch = rig.node.runtime
    good = watch.store
    # The watch's own connection fails (a Redis nobody listens on); the rest of the node runs.
    watch.store = RuntimeJobStore(redis_client(f"redis://127.0.0.1:{free_port()}/0"), rig.node.keys)
    add(rig, "r2", every_second(), from_s=start)  # not seen while the watch cannot read
    rig.tick()
    rig.tick()
    assert slots_of(rig, "r") == seconds(start + 1, start + 2)
    assert rig.node.jobs.keys() == {"a", "r"}
    [warning] = said(caplog, "runtime jobs: could not read them")
    assert warning.endswith("; keeping the 1 known")
    watch.store = good
    rig.tick()
    assert rig.node.jobs.keys() == {"a", "r", "r2"}
    assert slots_of(rig, "r2") == seconds(start + 1, start + 2, start + 3)  # caught up
    assert said(caplog, "runtime jobs: readable again") == ["runtime jobs: readable again (2)"]


def test_a_config_job_shadows_a_runtime_one_after_a_reload_and_others_stay(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    start = now_s(rig)
    add(rig, "b", every_second(task="t.runtime"), from_s=start)
    add(rig, "c", every_second(task="t.runtime"), from_s=start)
    rig.lead()
    rig.tick()
    text = rig.path.read_text()
    write_config(
        rig.path, redis_url=load_config(rig.path).scheduler.redis_url,
        jobs={"a": every_second(), "b": every_second(task="t.config")}, lease_ttl="2s",
        extra_settings={"max_clock_offset": "5s"},
    )  # fmt: skip
    assert rig.path.read_text() != text
    rig.node.request_reload()
    rig.node.turn()
    pending = rig.node._reloading
    if pending is not None:
        assert pending.wait(10)
    rig.tick()
    rig.tick()
    tasks = [(m["headers"]["scheduler_job"], m["headers"]["task"]) for m in messages(rig)]
    assert [task for job, task in tasks if job == "b"] == ["t.runtime", "t.config", "t.config"]
    assert slots_of(rig, "c") == seconds(start + 1, start + 2, start + 3)
    assert rig.node.jobs["b"].task == "t.config"
    assert rig.node.runtime_jobs.shadowed == ["b"]
    assert said(caplog, "shadowed") == [
        "runtime job b is shadowed by the job of that name in scheduler.toml: the config's job "
        "runs (remove the runtime one: `scheduler jobs remove`)"
    ]
    assert said(caplog, "config reloaded") == [
        f"config reloaded: 2 jobs, hash {rig.node.config.hash}; changed b (task); 1 runtime jobs kept"
    ]


def messages(rig: Rig) -> list[dict[str, Any]]:
    raw = rig.redis.lrange(QUEUE, 0, -1)[::-1]
    return [json.loads(payload) for payload in raw]
