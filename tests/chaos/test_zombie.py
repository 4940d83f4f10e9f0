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
broker are allowed there, only under the same task id, and the worker hook runs each slot once.

The third runs every node with ``--no-deadline-check``: a woken zombie no longer stops at its
own deadline, so only the fence in Redis stops it. Each of its stops is aimed just after the
leader claimed a slot and lasts until the successor claimed past the zombie's next slot, so
every zombie wakes with a slot due; and while it wakes, Redis holds back scripts (CLIENT PAUSE
WRITE) until the zombie's claim has arrived, so its keeper cannot learn of the lost lease first
and drop it before the main loop reads it (a race the main loop usually wins, but not always).
Then each stop ends in exactly one refusal by the fencing check, a step-down, and no claim
under the zombie's token: deterministic, so the test asserts it."""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from tests.integration.harness import PARKED, Child, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import (
    Claim,
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
# The fence-alone variant: no bulk jobs (it aims its stops by the leader's claims instead).
NO_DEADLINE_CHECK = "--no-deadline-check"
FENCE_STOPS = pick(4, 40)
# How long Redis may hold scripts back while a zombie wakes: under the nodes' 0.5 s socket
# timeout (scheduler/connections.py), so no one's call times out meanwhile.
WAKE_PAUSE_MS = 400
STEPPED_DOWN = "no longer leading (fencing token {token})"
# The keeper gives the lease up by itself after this long without a loop turn (3 lease TTLs,
# scheduler/node.py), dropping it without asking Redis: a stop must stay well under it.
LOOP_STALL_S = 3 * LEASE_TTL_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def bring_up(
    cluster: ChaosCluster, worker: Child | None = None, extra_args: Sequence[str] = ()
) -> None:
    """Start the nodes with their clock offsets (and `extra_args`), the one ahead first, so it
    leads first."""
    for node_id, offset_s in CLOCK_OFFSET_S.items():
        cluster.node_args[node_id] = ["--clock-offset", str(offset_s), *extra_args]
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


@dataclass(frozen=True)
class Woken:
    """One stop of the fence-alone variant: who was stopped, and what it logged once woken."""

    node_id: str
    token: int
    stopped_at_ms: int
    stopped_s: float  # from SIGSTOP to SIGCONT
    log: str  # the zombie's log from its SIGCONT until two slots after its step-down

    def problems(self, claims: Sequence[Claim]) -> list[str]:
        """What this stop did wrong: anything but one refused claim, then the step-down, and no
        claim under the zombie's token after it was stopped."""
        found = []
        refusals = self.log.count(FENCE_REFUSED)
        if refusals != 1:
            found.append(f"{refusals} fence refusals logged, not 1")
        refused_at = self.log.find(FENCE_REFUSED)
        stepped_down = self.log.find(STEPPED_DOWN.format(token=self.token), max(refused_at, 0))
        if refused_at < 0 or stepped_down < 0:
            found.append("no step-down after a fence refusal")
        found += [
            f"claimed {c.job}@{c.slot_s} {c.at_ms - self.stopped_at_ms} ms after its stop"
            for c in claims
            if c.token == self.token and c.at_ms >= self.stopped_at_ms
        ]
        if found:
            found.append(f"its log after SIGCONT:\n{self.log}")
        return [f"{self.node_id} (token {self.token}): {problem}" for problem in found]


def stop_leader_fence_alone(cluster: ChaosCluster, figures: Figures) -> Woken:
    """SIGSTOP the leader just after it claimed a slot, until the successor claimed past the
    zombie's next slot; SIGCONT it while Redis holds scripts back, until the zombie's keeper and
    main loop both sent theirs. The woken zombie, described."""
    # Aim at the instant after the leader's claim of a slot: its loop has just turned (so the
    # keeper finds it alive when it wakes) and its next slot is the one after.
    claim = cluster.wait_first_claim_after(time.time())
    zombie = cluster.wait_holder()
    assert claim.token == zombie.token, (claim, zombie)
    child = cluster.nodes[zombie.node_id]
    child.signal(signal.SIGSTOP)
    stopped_at = time.time()
    figures.faults += 1
    log_from = len(child.log_text())  # it writes nothing while stopped
    resumed = False
    try:
        successor = cluster.wait_holder(after=zombie)
        figures.gap(cluster.wait_claim_by(successor.token).at_ms / 1000 - stopped_at)
        # Its next slot is due once its clock reads it; the successor claims a slot no earlier
        # than its own clock reads that one. Keep the zombie frozen until the successor claimed
        # a slot that proves the zombie's next one due (and already claimed by the successor).
        next_s = claim.slot_s + 1
        due_s = next_s - CLOCK_OFFSET_S[zombie.node_id] + CLOCK_OFFSET_S[successor.node_id]
        cluster.wait_claimed(JOBS, math.ceil(due_s))
        with cluster.writes_paused(WAKE_PAUSE_MS):
            stopped_s = time.time() - stopped_at
            child.signal(signal.SIGCONT)
            resumed = True
            # The keeper's renewal and the main loop's claim (sent with the lease value it read
            # on waking) both wait in Redis; lifting the pause answers them, both refused.
            cluster.wait_until(
                lambda: cluster.parked_scripts(zombie.node_id) >= 2,
                timeout_s=WAKE_PAUSE_MS / 1000 * 0.75,
                what=f"the renewal and the claim of the woken {zombie.node_id}",
                interval_s=0.005,
            )
    finally:
        if not resumed:
            child.signal(signal.SIGCONT)
    stepped_down = STEPPED_DOWN.format(token=zombie.token)
    cluster.wait_until(
        lambda: stepped_down in child.log_text()[log_from:],
        timeout_s=10.0,
        what=f"{zombie.node_id} stepping down",
    )
    # Give it a few slots to misbehave in before the next stop.
    cluster.wait_claimed(JOBS, math.ceil(time.time()) + 2)
    assert child.alive(), child.tail()
    return Woken(
        zombie.node_id,
        zombie.token,
        round(stopped_at * 1000),
        stopped_s,
        child.log_text()[log_from:],
    )


def test_woken_zombie_without_deadline_check_is_refused_by_the_fence(
    cluster: ChaosCluster, figures: Figures
) -> None:
    figures.scenario = "zombie, own deadline check off (fence alone)"
    cluster.configure(
        namespace="chaos-zombie-fence",
        lease_ttl=f"{int(LEASE_TTL_S * 1000)}ms",
        jobs=catching_up(*JOBS),
    )
    bring_up(cluster, extra_args=[NO_DEADLINE_CHECK])
    window_first_s = open_window(cluster, JOBS)

    woken = [stop_leader_fence_alone(cluster, figures) for _ in range(FENCE_STOPS)]
    window_last_s = close_window(cluster, JOBS)

    messages = fired_messages(cluster.client(), PARKED)
    run = count_window(cluster, messages, JOBS, window_first_s, window_last_s)
    run.record(figures)
    problems = [problem for each in woken for problem in each.problems(run.claims)]
    refusals = sum(child.log_text().count(FENCE_REFUSED) for child in cluster.children.started)
    figures.notes["fence_refusals_logged"] = refusals
    figures.notes["stops_refused_once"] = sum(each.log.count(FENCE_REFUSED) == 1 for each in woken)
    figures.notes["max_stop_s"] = round(max(each.stopped_s for each in woken), 3)
    figures.notes["zombies"] = [each.node_id for each in woken]

    assert run.at_broker.exact, run.at_broker.describe("parked queue")
    assert run.claimed.exact, run.claimed.describe("claims")
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    # The premise of one refusal per stop: no keeper found its loop stalled and let go.
    assert all(each.stopped_s < LOOP_STALL_S for each in woken), figures.notes["max_stop_s"]
    assert not problems, "\n".join(problems)
    # No refusal anywhere else: one per stop, all the zombies'.
    assert refusals == FENCE_STOPS, refusals
