"""Issue 12's options on real Celery workers, fired by a real node (and `scheduler trigger`) on
a private Redis: every member of a group, expires = "next" discarding a stale backlog, hard and
soft time limits, ignore_result, the job's own headers, Redis priorities (kombu reads 0
first), queue routing, and a chain's last result.

One cluster serves every case but the chain: the jobs are written in one config, at instants a
few seconds ahead; a worker on the `special` queue runs from the start, another on `prio` and
`exp` only once their fires are queued (a worker that was stopped).
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from scheduler.store.keys import Keys
from scheduler.wire import member_id

from .harness import Child, Cluster, slot_text, task_id_for

NS = "it-options"
PRIO_LOG = "it-options:prio-log"
HEADERS_LOG = "it-options:headers"
NAP = "tests.integration.slow_tasks.nap"


def worker(cluster: Cluster, name: str, queues: str, pool: str) -> Child:
    """A worker of the test tasks (and the `jobs` app's) on `queues`."""
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.slow_tasks", "worker",
        f"--pool={pool}", "--concurrency=2", "--without-mingle", "--without-gossip",
        "--without-heartbeat", "-Q", queues, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h",
        "--loglevel=INFO",
    ]  # fmt: skip
    return cluster.children.start(name, command, cluster.env)


def reports(state: redis.Redis, job: str) -> list[dict[str, str]]:
    """The worker reports of `job`, oldest first."""
    entries = state.xrange(Keys(NS).reports(job))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def events(state: redis.Redis, job: str, event: str) -> list[dict[str, str]]:
    return [report for report in reports(state, job) if report.get("event") == event]


def newest_slot(state: redis.Redis, queue: str) -> str | None:
    """The slot of the newest message in `queue` (kombu LPUSHes: index 0)."""
    newest = state.lindex(queue, 0)
    return None if newest is None else str(json.loads(newest)["headers"]["scheduler_slot"])


def queued(state: redis.Redis, pattern: str) -> int:
    """Messages in the lists whose keys match `pattern` (a queue and its priority sub-queues)."""
    return sum(int(state.llen(key)) for key in state.scan_iter(match=pattern))


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_options_on_real_workers(cluster: Cluster) -> None:
    now = int(time.time())
    at = now + 10  # the `at` jobs' instant: the node leads and the first worker runs by then
    end = now + 7  # the last slot of the every-second job whose worker is not running yet
    iso = slot_text
    group_steps = [
        {"task": "jobs.examples.add", "args": [1, 2]},
        {"task": "jobs.examples.mul", "args": [3, 4]},
        {"task": "jobs.examples.hello", "args": ["group"]},
    ]
    jobs: dict[str, dict[str, object]] = {
        "fan": {"at": iso(at), "queue": "special", "group": group_steps},
        "sleepy": {"at": iso(at), "queue": "special", "task": NAP, "time_limit": "1s",
                   "kwargs": {"seconds": 5, "log_key": "it-options:sleepy"}},
        "routed": {"at": iso(at), "queue": "special", "task": "jobs.examples.ping"},
        "quiet": {"at": iso(at), "queue": "special", "task": "jobs.examples.ping",
                  "ignore_result": True},
        "soft": {"at": iso(at), "queue": "special", "task": NAP, "soft_time_limit": "1s",
                 "time_limit": "10s", "kwargs": {"seconds": 4, "log_key": "it-options:soft"}},
        "tagged": {"at": iso(at), "queue": "special", "headers": {"tenant": "acme"},
                   "task": "tests.integration.slow_tasks.headers_seen",
                   "kwargs": {"name": "tenant", "log_key": HEADERS_LOG}},
        "unrouted": {"at": iso(at), "task": "jobs.examples.ping"},  # queue "celery": no worker
        "tick": {"every": "1s", "queue": "exp", "expires": "next", "end": iso(end),
                 "task": "jobs.examples.ping"},
        # Fired in this order (one second apart); kombu's Redis transport reads 0 first.
        "p9": {"at": iso(at), "queue": "prio", "priority": 9, "task": NAP,
               "kwargs": {"seconds": 0, "log_key": PRIO_LOG}},
        "p0": {"at": iso(at + 1), "queue": "prio", "priority": 0, "task": NAP,
               "kwargs": {"seconds": 0, "log_key": PRIO_LOG}},
        "p5": {"at": iso(at + 2), "queue": "prio", "priority": 5, "task": NAP,
               "kwargs": {"seconds": 0, "log_key": PRIO_LOG}},
    }  # fmt: skip
    cluster.configure(namespace=NS, jobs=jobs)
    special = worker(cluster, "special", "special", "prefork")  # prefork: time limits need it
    cluster.start_node("n1")
    cluster.wait_worker_ready(special)
    cluster.wait_for_leader()
    state = cluster.state()
    client = Celery("it-client", broker=cluster.redis_url, backend=cluster.redis_url)
    try:
        # -- group, fired by the node at `at`: every member runs, under its own id -------
        ident = task_id_for(NS, "fan", iso(at))
        members = [member_id(ident, index) for index in range(3)]
        assert [AsyncResult(m, app=client).get(timeout=20) for m in members] == [
            3, 12, "Hello, group!",
        ]  # fmt: skip
        succeeded = cluster.wait_until(
            lambda: len(found := events(state, "fan", "succeeded")) == 3 and found,
            timeout_s=10, what="3 group members reported",
        )  # fmt: skip
        assert sorted(report["task_id"] for report in succeeded) == sorted(members)
        assert {report["slot"] for report in succeeded} == {iso(at)}

        # -- the same group fired by `scheduler trigger`: every member again, ids of its own
        done = cluster.cli("trigger", "fan")
        assert done.returncode == 0, done.stderr
        manual = re.search(r"task (\S+) \(slot", done.stdout)
        assert manual is not None, done.stdout
        again = [member_id(manual.group(1), index) for index in range(3)]
        assert [AsyncResult(m, app=client).get(timeout=20) for m in again] == [
            3, 12, "Hello, group!",
        ]  # fmt: skip

        # -- routing: the `special` job ran there; the `celery` one waits for its worker --
        assert len(cluster.wait_until(
            lambda: events(state, "routed", "succeeded"), timeout_s=10, what="routed's run",
        )) == 1  # fmt: skip
        assert int(state.llen("celery")) == 1
        assert reports(state, "unrouted") == []

        # -- time_limit = "1s" on a 5 s nap: killed by the worker ------------------------
        sleepy = AsyncResult(task_id_for(NS, "sleepy", iso(at)), app=client)
        cluster.wait_until(lambda: sleepy.state == "FAILURE", timeout_s=15, what="sleepy killed")
        assert type(sleepy.result).__name__ == "TimeLimitExceeded"
        assert "Hard time limit (1.0s) exceeded" in special.log_text()
        failed = cluster.wait_until(
            lambda: events(state, "sleepy", "failed"), timeout_s=5, what="sleepy's failure"
        )
        assert failed[0]["error"].startswith("TimeLimitExceeded"), failed

        # -- soft_time_limit = "1s" on a 4 s nap: the task is interrupted, and fails --------
        soft = cluster.wait_until(
            lambda: events(state, "soft", "failed"), timeout_s=15, what="soft's failure"
        )
        assert soft[0]["error"].startswith("SoftTimeLimitExceeded"), soft

        # -- ignore_result: it ran, and left no result behind -------------------------------
        cluster.wait_until(
            lambda: events(state, "quiet", "succeeded"), timeout_s=10, what="quiet's run"
        )
        quiet_id = task_id_for(NS, "quiet", iso(at))
        assert not state.exists(f"celery-task-meta-{quiet_id}")
        assert state.exists(f"celery-task-meta-{task_id_for(NS, 'routed', iso(at))}")

        # -- headers: the job's own header reaches the task ---------------------------------
        seen = cluster.wait_until(
            lambda: state.lrange(HEADERS_LOG, 0, -1), timeout_s=10, what="tagged's run"
        )
        assert [json.loads(raw) for raw in seen] == ["acme"]

        # -- a worker that was stopped: priorities and expiry ------------------------------
        cluster.wait_until(lambda: queued(state, "prio*") == 3, timeout_s=10,
                           what="the 3 prioritised fires queued")  # fmt: skip
        stale = cluster.wait_until(
            lambda: int(state.llen("exp")) if newest_slot(state, "exp") == iso(end) else None,
            timeout_s=10, what="tick's last fire queued",
        )  # fmt: skip
        assert stale >= 2, stale  # the node leads a few seconds before `end`
        late = worker(cluster, "late", "prio,exp", "solo")
        cluster.wait_worker_ready(late)
        started = cluster.wait_until(
            lambda: len(runs := [json.loads(r) for r in state.lrange(PRIO_LOG, 0, -1)
                                 if json.loads(r)["event"] == "start"]) == 3 and runs,
            timeout_s=20, what="the 3 prioritised runs",
        )  # fmt: skip
        slots = {iso(at): 9, iso(at + 1): 0, iso(at + 2): 5}
        assert [slots[run["slot"]] for run in started] == [0, 5, 9]
        # Every tick but the last had expired at its next slot; the last has no next slot.
        ran = cluster.wait_until(
            lambda: events(state, "tick", "succeeded"), timeout_s=10, what="tick's last run"
        )
        cluster.wait_until(
            lambda: late.log_text().count("Discarding revoked task") >= stale - 1,
            timeout_s=10, what="the stale ticks discarded",
        )  # fmt: skip
        assert [report["slot"] for report in ran] == [iso(end)]
        assert late.log_text().count("Discarding revoked task") == stale - 1
        assert queued(state, "exp*") == 0
    finally:
        client.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_chain_fired_by_trigger_ends_with_the_last_result(cluster: Cluster) -> None:
    chain = [
        {"task": "jobs.examples.add", "args": [4, 4]},
        {"task": "jobs.examples.mul", "args": [8]},
    ]
    cluster.configure(namespace=NS, jobs={"chained": {"cron": "0 0 1 1 *", "queue": "special",
                                                       "chain": chain}})  # fmt: skip
    special = worker(cluster, "special", "special", "solo")
    cluster.wait_worker_ready(special)
    client = Celery("it-client", broker=cluster.redis_url, backend=cluster.redis_url)
    try:
        done = cluster.cli("trigger", "chained")
        assert done.returncode == 0, done.stderr
        found = re.search(r"task (\S+) \(slot", done.stdout)
        assert found is not None, done.stdout
        first = AsyncResult(found.group(1), app=client)
        assert first.get(timeout=20) == 8
        children = cluster.wait_until(
            lambda: AsyncResult(first.id, app=client).children,
            timeout_s=10, what="the chain's next task",
        )  # fmt: skip
        assert [child.get(timeout=5) for child in children] == [64]
    finally:
        client.close()
