"""Scenario 4: Redis Sentinel. The master is SIGKILLed; the sentinels promote the replica and the
scheduler nodes, which only know the sentinels, carry on without a restart: every slot of the
window is on the new master's queue exactly once, and the fencing token kept growing.

The group is a master, a replica and three sentinels (quorum 2, down-after 1 s, failover
timeout 3 s) on loopback ports of the test's own. The state and the broker are both the
Sentinel URL, so claim and enqueue stay one script on whichever server is master. A real
Celery worker (`celery -A jobs worker`, configured from the same redis+sentinel:// file) runs
one job's tasks through every promotion: each slot of the window is executed exactly once. In
the long variant the crashed server comes back each time as a replica, and the master is
killed again.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from tests.integration.harness import PARKED, Children, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import fenced_claims
from .results import Figures, pick, seed
from .servers import SentinelGroup
from .window import close_window, count_window, open_window

NODES = ("n1", "n2")
JOBS = ("alpha", "beta")  # parked: their messages stay on the queue, and are counted there
WORKED_JOB = "worked"  # the worker runs this one: its executions are counted
WORKED_QUEUE = "chaos-sentinel-worked"
FAILOVERS = pick(1, 12)
TIMEOUT_S = pick(150, 900)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def test_scheduler_carries_on_through_sentinel_promotion(
    children: Children, sentinel_group: SentinelGroup, tmp_path: Path, figures: Figures
) -> None:
    figures.scenario = "Sentinel: master SIGKILLed, replica promoted"
    rng = random.Random(seed(figures))
    cluster = ChaosCluster(
        children,
        tmp_path / "scheduler.toml",
        sentinel_group.sentinel_url,
        observe=sentinel_group.master_client,
    )
    jobs = {**catching_up(*JOBS), **catching_up(WORKED_JOB, queue=WORKED_QUEUE)}
    cluster.configure(namespace="chaos-sentinel", lease_ttl="1s", jobs=jobs)
    worker = cluster.start_worker(WORKED_QUEUE)
    cluster.bring_up_all(*NODES, worker=worker)
    window_first_s = open_window(cluster, (*JOBS, WORKED_JOB))

    tokens = [cluster.wait_holder().token]
    promotion_s: list[float] = []
    for failover in range(FAILOVERS):
        if failover:
            cluster.wait_claimed(JOBS, math.ceil(time.time()) + 1)
        time.sleep(rng.uniform(0.0, 1.0))  # fault timing, not synchronisation
        master = sentinel_group.current_master()
        before = cluster.wait_holder()
        master.kill()
        killed_at = time.time()
        figures.faults += 1
        sentinel_group.wait_promoted(sentinel_group.other(master))
        promotion_s.append(round(time.time() - killed_at, 2))
        # Carrying on: a claim made on the new master after the kill.
        first = cluster.wait_first_claim_after(killed_at)
        figures.gap(first.at_ms / 1000 - killed_at)
        after = cluster.wait_holder()
        tokens.append(after.token)
        assert after.token >= before.token
        if failover + 1 < FAILOVERS:
            sentinel_group.rejoin(master)
    window_last_s = close_window(cluster, (*JOBS, WORKED_JOB))
    cluster.wait_executed([WORKED_JOB], window_last_s)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(
        cluster, messages, JOBS, window_first_s, window_last_s, worked_job=WORKED_JOB
    )
    run.record(figures)
    figures.notes["promotion_s"] = promotion_s

    assert cluster.incarnations == dict.fromkeys(NODES, 1), "a node was restarted"
    assert all(cluster.nodes[n].alive() for n in NODES), children.log_tails()
    assert tokens == sorted(tokens), f"fencing tokens went backwards: {tokens}"
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert run.at_broker.exact, run.at_broker.describe("parked queue on the new master")
    assert worker.alive(), worker.tail()
    assert run.executed.exact, run.executed.describe("executions by the worker")
