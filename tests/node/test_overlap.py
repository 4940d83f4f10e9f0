"""`overlap = "skip"` in the leader loop, in process: a job whose previous run is still going
(as the worker hooks report it: an outcome "started" and a "started" run claim) does not get
its slot; the slot is a missed range with reason "overlap", its watermark moves on, and every
other fire of the tick goes out as usual."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from scheduler.connections import redis_client
from scheduler.store.running import running_jobs
from scheduler.wire import slot_text, task_id
from tests.conftest import free_port
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]
NS = "it"  # the namespace of the rig's config


def every_second(**extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE, **extra}


def now_slot(rig: Rig) -> int:
    return int(rig.clock.wall_s)


def start_run(rig: Rig, job: str, slot_s: int) -> str:
    """Write what the worker hooks write while the run of (job, slot) goes on; its task id."""
    ident = task_id(NS, job, slot_s)
    record = {"slot": slot_text(slot_s), "task_id": ident, "outcome": "started",
              "detail": None, "at": rig.clock.time()}  # fmt: skip
    rig.redis.hset(rig.node.keys.outcomes, job, json.dumps(record))
    rig.redis.set(rig.node.keys.run_claim(ident), "started 0 1700000000000 nonce w1@host", ex=60)
    return ident


def missed(rig: Rig) -> list[dict[str, str]]:
    entries: Any = rig.redis.xrange(rig.node.keys.missed)
    return [
        {k.decode(): v.decode() for k, v in fields.items() if k != b"token"}
        for _, fields in entries
    ]


def history_slots(rig: Rig, job: str) -> list[int]:
    entries: Any = rig.redis.xrange(rig.node.keys.history)
    return [
        int(fields[b"slot"])
        for _, fields in entries
        if fields[b"job"] == job.encode() and b"kind" not in fields
    ]


def overlap_range(job: str, slot_s: int) -> dict[str, str]:
    return {"job": job, "first": str(slot_s), "last": str(slot_s), "count": "1",
            "reason": "overlap"}  # fmt: skip


def test_a_running_skip_job_gets_its_slot_recorded_as_overlap_and_others_fire(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"long": every_second(overlap="skip"), "other": every_second()})
    rig.lead()
    rig.tick()
    first = now_slot(rig)
    assert rig.fired() == [("long", slot_text(first)), ("other", slot_text(first))]
    ident = start_run(rig, "long", first)

    rig.tick()
    second = now_slot(rig)
    assert rig.fired()[2:] == [("other", slot_text(second))]
    assert missed(rig) == [overlap_range("long", second)]
    assert rig.redis.hget(rig.node.keys.watermarks, "long") == str(second).encode()
    assert history_slots(rig, "long") == [first]
    skips = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skips == [
        f"skipped 1 slot(s) of long from {slot_text(second)} to {slot_text(second)}: its "
        'previous run is still running (overlap = "skip")'
    ]

    rig.tick()  # still running: skipped again, one range per slot
    third = now_slot(rig)
    assert missed(rig) == [overlap_range("long", second), overlap_range("long", third)]

    rig.redis.set(rig.node.keys.run_claim(ident), "done 0 1700000000000 nonce w1@host")
    rig.tick()  # the run ended: the next slot fires
    fourth = now_slot(rig)
    assert rig.fired()[-2:] == [("long", slot_text(fourth)), ("other", slot_text(fourth))]
    assert history_slots(rig, "long") == [first, fourth]
    assert len(missed(rig)) == 2


def test_a_job_that_allows_overlap_fires_while_its_run_goes_on(rig_factory: RigFactory) -> None:
    rig = rig_factory({"free": every_second()})
    rig.lead()
    rig.tick()
    start_run(rig, "free", now_slot(rig))
    rig.tick()
    assert [job for job, _ in rig.fired()] == ["free", "free"]
    assert missed(rig) == []


def test_a_vanished_claim_or_garbage_counts_as_not_running(rig_factory: RigFactory) -> None:
    rig = rig_factory({"long": every_second(overlap="skip")})
    rig.lead()
    rig.tick()
    ident = start_run(rig, "long", now_slot(rig))
    rig.redis.delete(rig.node.keys.run_claim(ident))  # the worker died: its claim lapsed
    rig.tick()
    rig.redis.hset(rig.node.keys.outcomes, "long", b"\xff not json")
    rig.tick()
    rig.redis.hset(rig.node.keys.outcomes, "long", json.dumps({"outcome": "started"}))
    rig.tick()
    assert len(rig.fired()) == 4
    assert missed(rig) == []


def test_outcomes_of_the_wrong_type_log_one_error_and_every_job_fires(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"long": every_second(overlap="skip"), "other": every_second()})
    rig.lead()
    rig.redis.set(rig.node.keys.outcomes, "not a hash")
    for _ in range(3):
        rig.tick()
    assert sorted(job for job, _ in rig.fired()) == ["long"] * 3 + ["other"] * 3
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("overlap check: reading which jobs are running: WRONGTYPE")
    assert errors[0].endswith("; treating every job as not running")


def test_redis_failing_in_the_overlap_check_is_retried_like_any_send(
    rig_factory: RigFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A StoreUnavailable from the check is the send's: the node retries the whole send. The
    first check asks a Redis that is not there (a closed port), the retry the real one."""
    rig = rig_factory({"long": every_second(overlap="skip")})
    rig.lead()
    real = rig.node.dispatcher.running
    assert real is not None
    gone = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    asked: list[list[str]] = []

    def first_unreachable(jobs: Sequence[str]) -> Mapping[str, str]:
        asked.append(list(jobs))
        if len(asked) == 1:
            return running_jobs(gone, rig.node.keys, jobs, rig.clock.time())
        return real(jobs)

    monkeypatch.setattr(rig.node.dispatcher, "running", first_unreachable)
    rig.tick()
    assert asked == [["long"], ["long"]]
    assert rig.fired() == [("long", slot_text(now_slot(rig)))]
    retries = [r.getMessage() for r in caplog.records if "dispatch failed" in r.getMessage()]
    assert len(retries) == 1
    assert retries[0].startswith("dispatch failed, retrying: reading which jobs are running: ")
