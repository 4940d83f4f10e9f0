"""Scenario 2: a zombie leader. The leader is SIGSTOPped until another node has taken over and
fired past the stopped one's lease, then SIGCONTed: it claims nothing after its lease ended,
and every slot of the window reaches the broker exactly once.

Two things make the zombie dangerous on purpose. Its clock runs ahead of the others' (within
the 1 s limit), so it wakes believing a slot is due that its successor has not claimed yet: the
watermark alone would let it take that slot, under its dead lease. And a few hundred "bulk"
jobs make each second's dispatch take longer, and every other stop is aimed at the start of a
second, so a stop may land between the leader's own deadline check and its claim: then only
the fencing check inside Redis stops it. Since message building became fast that is rare; the
test counts it (``fence_refusals_logged``).

The second test does the same with RabbitMQ through the outbox, with a worker: repeats at the
broker are allowed there, only under the same task id, and the worker hook runs each slot once."""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Sequence

import pytest

from tests.integration.harness import PARKED, Child, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import (
    fenced_claims,
    owned_amqp_queues,
    pairs_of,
    tally,
)
from .results import Figures, pick, seed
from .window import assert_outbox_promise, close_window, count_window, open_window

# Clocks within the 1 s limit, the first node ahead of the others: when it is the zombie, it
# wakes believing a slot is due that its successor has not claimed yet, so only the fencing
# check (and its own deadline) stops it from claiming that slot under its dead lease.
CLOCK_OFFSET_S = {"n1": 0.45, "n2": -0.45, "n3": -0.45}
NODES = tuple(CLOCK_OFFSET_S)
JOBS = ("alpha", "beta")
WORKED_JOB = "worked"
BULK_QUEUE = "bulk"
BULK = tuple(f"bulk{index:04d}" for index in range(pick(200, 400)))
AIM_S = 0.08  # about how long the leader takes to build the bulk jobs' messages
FENCE_REFUSED = "claim refused by the fencing check"
LEASE_TTL_S = 1.0
STOPS = pick(2, 30)
TIMEOUT_S = pick(120, 1200)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def bring_up(cluster: ChaosCluster, worker: Child | None = None) -> None:
    """Start the nodes with their clock offsets, the one ahead first, so it leads first."""
    for node_id, offset_s in CLOCK_OFFSET_S.items():
        cluster.node_args[node_id] = ["--clock-offset", str(offset_s)]
    cluster.bring_up_all(NODES[0])
    cluster.bring_up_all(*NODES[1:], worker=worker)
    assert cluster.wait_holder().node_id == NODES[0]


def stop_leaders(
    cluster: ChaosCluster, figures: Figures, rng: random.Random, jobs: Sequence[str]
) -> list[str]:
    """SIGSTOP the leader STOPS times, each until a successor fired past its lease, then
    SIGCONT it; every claim a zombie made after its lease ended, described."""
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
            successor = cluster.wait_holder(after=zombie)
            figures.gap(cluster.wait_claim_by(successor.token).at_ms / 1000 - stopped_at)
            # Keep it frozen until the successor fired slots the zombie could have stolen.
            cluster.wait_claimed(jobs, math.ceil(lease_end_ms / 1000) + 1)
        finally:
            child.signal(signal.SIGCONT)
        woken_s = math.ceil(time.time())
        # Awake, it runs its loop at once: give it a few slots to misbehave in.
        cluster.wait_claimed(jobs, woken_s + 2)
        assert child.alive(), child.tail()
        late += [
            f"token {c.token} claimed {c.job}@{c.slot_s} {c.at_ms - lease_end_ms:.0f} ms "
            "after its lease ended"
            for c in cluster.claims()
            if c.token == zombie.token and c.at_ms > lease_end_ms
        ]
    return late


def test_woken_zombie_claims_nothing_after_its_lease(
    cluster: ChaosCluster, figures: Figures
) -> None:
    figures.scenario = "zombie leader (SIGSTOP past the lease, SIGCONT)"
    rng = random.Random(seed(figures))
    cluster.configure(
        namespace="chaos-zombie",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs={**catching_up(*JOBS), **catching_up(*BULK, queue=BULK_QUEUE)},
    )
    bring_up(cluster)
    window_first_s = open_window(cluster, JOBS)

    late = stop_leaders(cluster, figures, rng, JOBS)
    window_last_s = close_window(cluster, JOBS)

    cluster.wait_enqueued(BULK_QUEUE, BULK, window_last_s)

    messages = fired_messages(cluster.client(), PARKED)
    bulk_messages = fired_messages(cluster.client(), BULK_QUEUE)
    # The claims come from a capped stream: the bulk jobs' older claims are trimmed.
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    bulk = tally(pairs_of(bulk_messages), BULK, window_first_s, window_last_s)
    run.record(figures, bulk)
    figures.notes["claims_after_lease_end"] = len(late)
    figures.notes["fence_refusals_logged"] = sum(
        child.log_text().count(FENCE_REFUSED) for child in cluster.children.started
    )

    assert not late, late[:10]
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert run.at_broker.exact, run.at_broker.describe("parked queue")
    assert bulk.exact, bulk.describe("bulk queue")


def test_woken_zombie_with_outbox_repeats_only_same_ids(
    cluster: ChaosCluster, figures: Figures, rabbitmq_url: str, queue_prefix: str
) -> None:
    """The same with RabbitMQ through the outbox: publishing cannot be fenced (RabbitMQ knows
    no lease), so a publisher stopped mid-batch may publish it after it lost the lease; that
    is a repeat with the same task id, which the worker hook runs once."""
    figures.scenario = "zombie leader, RabbitMQ via outbox"
    rng = random.Random(seed(figures))
    parked_queue, worked_queue = f"{queue_prefix}-parked", f"{queue_prefix}-worked"
    cluster.configure(
        namespace="chaos-zombie-amqp",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs={
            **catching_up(*JOBS, queue=parked_queue),
            **catching_up(WORKED_JOB, queue=worked_queue),
        },
        extra_settings={"broker_url": rabbitmq_url},
    )
    all_jobs = (*JOBS, WORKED_JOB)
    with owned_amqp_queues(
        rabbitmq_url, parked_queue, worked_queue, children=cluster.children
    ) as parked:
        worker = cluster.start_worker(worked_queue)
        bring_up(cluster, worker)
        window_first_s = open_window(cluster, all_jobs)
        late = stop_leaders(cluster, figures, rng, all_jobs)
        window_last_s = math.ceil(time.time())
        cluster.wait_for_parked(parked, JOBS, window_last_s + 2)
        cluster.wait_executed([WORKED_JOB], window_last_s + 2)

    run = count_window(
        cluster, parked.messages, JOBS, window_first_s, window_last_s, worked_job=WORKED_JOB
    )
    run.record(figures)
    figures.notes["claims_after_lease_end"] = len(late)

    assert not late, late[:10]
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert_outbox_promise(run, cluster.namespace, JOBS)
