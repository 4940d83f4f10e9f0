"""Scenario 4: Redis Sentinel. The master is SIGKILLed; the sentinels promote the replica and the
scheduler nodes, which only know the sentinels, carry on without a restart: every slot of the
window is on the new master's queue exactly once, and the fencing token kept growing.

The group is a master, a replica and three sentinels (quorum 2, down-after 1 s, failover
timeout 3 s) on loopback ports of the test's own. The state and the broker are both the
Sentinel URL, so claim and enqueue stay one script on whichever server is master. In the long
variant the crashed server comes back each time as a replica, and the master is killed again.
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
JOBS = ("alpha", "beta")
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
    cluster.configure(namespace="chaos-sentinel", lease_ttl="1s", jobs=catching_up(*JOBS))
    cluster.bring_up_all(*NODES)
    window_first_s = open_window(cluster, JOBS)

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
    window_last_s = close_window(cluster, JOBS)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    run.record(figures)
    figures.notes["promotion_s"] = promotion_s

    assert cluster.incarnations == dict.fromkeys(NODES, 1), "a node was restarted"
    assert all(cluster.nodes[n].alive() for n in NODES), children.log_tails()
    assert tokens == sorted(tokens), f"fencing tokens went backwards: {tokens}"
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert run.at_broker.exact, run.at_broker.describe("parked queue on the new master")
