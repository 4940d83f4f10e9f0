"""Scenario 2: a zombie leader. The leader is SIGSTOPped until another node has taken over and
fired past the stopped one's lease, then SIGCONTed: it claims nothing after its lease ended,
and every slot of the window reaches the broker exactly once.

A few hundred "bulk" jobs make each second's dispatch take a while, so some stops land between
the leader's own deadline check and its claim: then only the fencing check inside Redis stands
between the woken zombie and a double enqueue (the test counts how often that happened)."""

from __future__ import annotations

import math
import random
import signal
import time

import pytest

from tests.integration.harness import PARKED, catching_up, every_second, fired_messages

from .nodes import ChaosCluster
from .observe import fenced_claims, pairs_of, tally
from .results import Figures, pick, seed

NODES = ("n1", "n2", "n3")
JOBS = ("alpha", "beta")
BULK_QUEUE = "bulk"
BULK = tuple(f"bulk{index:04d}" for index in range(pick(200, 400)))
AIM_S = 0.08  # about how long the leader takes to build the bulk jobs' messages
FENCE_REFUSED = "claim refused by the fencing check"
LEASE_TTL_S = 1.0
STOPS = pick(2, 30)
TIMEOUT_S = pick(120, 1200)


@pytest.mark.integration
@pytest.mark.timeout(TIMEOUT_S)
def test_woken_zombie_claims_nothing_after_its_lease(
    cluster: ChaosCluster, figures: Figures
) -> None:
    figures.scenario = "zombie leader (SIGSTOP past the lease, SIGCONT)"
    rng = random.Random(seed(figures))
    cluster.configure(
        namespace="chaos-zombie",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs={
            **catching_up(*JOBS),
            **{
                job: every_second(queue=BULK_QUEUE, catchup="all", misfire_grace="1m")
                for job in BULK
            },
        },
    )
    cluster.bring_up_all(*NODES)
    window_first_s = math.ceil(time.time()) + 1
    cluster.wait_claimed(JOBS, window_first_s + 1)

    late: list[str] = []
    for stop in range(STOPS):
        cluster.wait_holder()
        # Fault timing, not synchronisation: every other stop aims at the few tens of ms after a
        # second begins, while the leader builds that second's messages before claiming them.
        now = time.time()
        aimed = math.ceil(now) - now + rng.uniform(0.0, AIM_S)
        time.sleep(aimed if stop % 2 == 0 else rng.uniform(0.0, 1.0))
        zombie = cluster.wait_holder()
        child = cluster.nodes[zombie.node_id]
        child.signal(signal.SIGSTOP)
        stopped_at = time.time()
        lease_end_ms = (stopped_at + LEASE_TTL_S) * 1000  # its last renewal was sent before
        figures.faults += 1
        try:
            successor = cluster.wait_holder(other_than_token=zombie.token)
            figures.gap(cluster.wait_claim_by(successor.token).at_ms / 1000 - stopped_at)
            # Keep it frozen until the successor fired slots the zombie could have stolen.
            cluster.wait_claimed(JOBS, math.ceil(lease_end_ms / 1000) + 1)
        finally:
            child.signal(signal.SIGCONT)
        woken_s = math.ceil(time.time())
        # Awake, it runs its loop at once: give it a few slots to misbehave in.
        cluster.wait_claimed(JOBS, woken_s + 2)
        assert child.alive(), child.tail()
        late += [
            f"token {c.token} claimed {c.job}@{c.slot_s} {c.at_ms - lease_end_ms:.0f} ms "
            "after its lease ended"
            for c in cluster.claims()
            if c.token == zombie.token and c.at_ms > lease_end_ms
        ]
    window_last_s = math.ceil(time.time())
    cluster.wait_claimed(JOBS, window_last_s + 2)

    cluster.wait_enqueued(BULK_QUEUE, BULK, window_last_s)

    messages = fired_messages(cluster.client(), PARKED)
    bulk_messages = fired_messages(cluster.client(), BULK_QUEUE)
    claims = cluster.claims()  # capped stream: the bulk jobs' older claims are trimmed
    at_broker = tally(pairs_of(messages), JOBS, window_first_s, window_last_s)
    bulk = tally(pairs_of(bulk_messages), BULK, window_first_s, window_last_s)
    figures.slots_expected = at_broker.expected + bulk.expected
    figures.missing = len(at_broker.missing) + len(bulk.missing)
    figures.repeated = at_broker.repeats + bulk.repeats
    figures.notes["claims_after_lease_end"] = len(late)
    figures.notes["fence_refusals_logged"] = sum(
        child.log_text().count(FENCE_REFUSED) for child in cluster.children.started
    )

    assert not late, late[:10]
    assert not fenced_claims(claims), fenced_claims(claims)[:10]
    assert at_broker.exact, at_broker.describe("parked queue")
    assert bulk.exact, bulk.describe("bulk queue")
