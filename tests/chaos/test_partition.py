"""Scenario 6: the leader is cut off from Redis (state and broker), then the path is restored.

Each node reaches Redis only through a TCP proxy of its own (its SCHEDULER_REDIS_URL and
SCHEDULER_BROKER_URL point at it), so the test can partition whichever node leads: either a
black hole (nothing answers; the node learns only from its own timeouts) or a reset. Another
node takes over after the lease TTL; the cut-off leader claims nothing after its lease ended,
rejoins as a standby once the path is back, and every slot reaches the broker exactly once.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import pytest

from tests.conftest import RedisServer
from tests.integration.harness import PARKED, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import fenced_claims
from .proxy import CutMode, TcpProxy
from .results import Figures, pick, seed
from .window import close_window, count_window, open_window

NODES = ("n1", "n2", "n3")
JOBS = ("alpha", "beta")
LEASE_TTL_S = 1.0
PARTITIONS = pick(2, 24)
PARTITION_S = pick((3.0, 3.0), (1.5, 8.0))  # how long a partition lasts: (least, most)
TIMEOUT_S = pick(150, 1200)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def test_partitioned_leader_is_fenced_and_rejoins(
    cluster: ChaosCluster,
    redis_server: RedisServer,
    figures: Figures,
    proxy: Callable[[int, str], TcpProxy],
) -> None:
    figures.scenario = "leader partitioned from Redis (black hole / reset), then healed"
    rng = random.Random(seed(figures))
    cluster.configure(
        namespace="chaos-partition",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs=catching_up(*JOBS),
    )
    paths: dict[str, TcpProxy] = {}
    for node_id in NODES:
        paths[node_id] = proxy(redis_server.port, f"path-{node_id}")
        url = f"redis://127.0.0.1:{paths[node_id].port}/0"
        cluster.node_env[node_id] = {"SCHEDULER_REDIS_URL": url, "SCHEDULER_BROKER_URL": url}
    cluster.bring_up_all(*NODES)
    assert all(r.get("atomic_enqueue", True) for r in cluster.node_records().values())
    window_first_s = open_window(cluster, JOBS)

    late: list[str] = []
    for index in range(PARTITIONS):
        mode = CutMode.BLACKHOLE if index % 2 == 0 else CutMode.RESET
        cluster.wait_holder()
        time.sleep(rng.uniform(0.0, 1.0))  # fault timing, not synchronisation
        leader = cluster.wait_holder()
        path = paths[leader.node_id]
        path.cut(mode)
        cut_at = time.time()
        lease_end_ms = (cut_at + LEASE_TTL_S) * 1000  # no renewal got through after the cut
        figures.faults += 1
        try:
            successor = cluster.wait_holder(after=leader)
            figures.gap(cluster.wait_claim_by(successor.token).at_ms / 1000 - cut_at)
            time.sleep(max(0.0, cut_at + rng.uniform(*PARTITION_S) - time.time()))  # the cut
        finally:
            path.restore()
        cluster.wait_claimed(JOBS, math.ceil(time.time()) + 2)
        child = cluster.nodes[leader.node_id]
        assert child.alive(), child.tail()
        late += [
            f"token {c.token} ({leader.node_id}, {mode.value}) claimed {c.job}@{c.slot_s} "
            f"{c.at_ms - lease_end_ms:.0f} ms after its lease ended"
            for c in cluster.claims()
            if c.token == leader.token and c.at_ms > lease_end_ms
        ]
    window_last_s = close_window(cluster, JOBS)
    # Healed: every node heartbeats through its proxy again.
    healed_at = time.time()
    for node_id in NODES:
        cluster.wait_heartbeat(node_id, cluster.nodes[node_id], after_s=healed_at)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    run.record(figures)
    figures.notes["claims_after_lease_end"] = len(late)

    assert not late, late[:10]
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert run.at_broker.exact, run.at_broker.describe("parked queue")
