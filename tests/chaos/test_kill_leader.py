"""Scenario 1: the leader is SIGKILLed again and again (three nodes; each killed node comes back
under its own id). Same-Redis broker: every slot exactly once at the broker. RabbitMQ through
the outbox: none lost, repeats only under the same task id. Either way the worker hook runs
each slot once, and no token claims after a newer one did."""

from __future__ import annotations

import math
import random
import time

import pytest

from tests.integration.harness import PARKED, every_second, fired_messages

from .nodes import ChaosCluster
from .observe import (
    AmqpQueueReader,
    amqp_queue_exists,
    delete_amqp_queues,
    fenced_claims,
    first_seen_out_of_order,
    pairs_of,
    tally,
    wrong_task_ids,
)
from .results import Figures, pick, seed

NODES = ("n1", "n2", "n3")
PARKED_JOBS = ("alpha", "beta")  # their messages stay on a queue nobody consumes: we count them
WORKED_JOB = "worked"  # a worker runs this one: we count its executions
KILLS = pick(5, 100)
TIMEOUT_S = pick(240, 3000)


def jobs(parked_queue: str, worked_queue: str) -> dict[str, dict[str, object]]:
    table = {
        job: every_second(queue=parked_queue, catchup="all", misfire_grace="1m")
        for job in PARKED_JOBS
    }
    table[WORKED_JOB] = every_second(queue=worked_queue, catchup="all", misfire_grace="1m")
    return table


def kill_repeatedly(cluster: ChaosCluster, figures: Figures) -> tuple[int, int]:
    """Kill the leader KILLS times; the window [first, last] of slots that spans every kill."""
    rng = random.Random(seed(figures))
    window_first_s = math.ceil(time.time()) + 1
    cluster.wait_claimed((*PARKED_JOBS, WORKED_JOB), window_first_s + 1)
    for _ in range(KILLS):
        _, gap_s = cluster.kill_leader(rng)
        figures.faults += 1
        figures.gap(gap_s)
    window_last_s = math.ceil(time.time()) + 1
    # Slots after the window are claimed too: whatever a killed leader left is done by then.
    cluster.wait_claimed((*PARKED_JOBS, WORKED_JOB), window_last_s + 2)
    return window_first_s, window_last_s


@pytest.mark.integration
@pytest.mark.timeout(TIMEOUT_S)
def test_killed_leaders_same_redis_broker_exactly_once(
    cluster: ChaosCluster, figures: Figures
) -> None:
    figures.scenario = "kill leader, same-Redis broker"
    worked_queue = "chaos-worked"
    cluster.configure(namespace="chaos-kill", lease_ttl="1s", jobs=jobs(PARKED, worked_queue))
    worker = cluster.start_worker(worked_queue)
    cluster.bring_up_all(*NODES, worker=worker)

    first_s, last_s = kill_repeatedly(cluster, figures)
    cluster.wait_executed([WORKED_JOB], last_s + 2)

    messages = fired_messages(cluster.client(), PARKED)
    claims = cluster.claims()
    at_broker = tally(pairs_of(messages), PARKED_JOBS, first_s, last_s)
    # Claim and enqueue are one script here: the worked job's claims are its messages.
    worked_at_broker = tally(pairs_of(claims), [WORKED_JOB], first_s, last_s)
    executed = tally(pairs_of(cluster.executions()), [WORKED_JOB], first_s, last_s)
    figures.slots_expected = at_broker.expected + worked_at_broker.expected
    figures.missing = len(at_broker.missing) + len(worked_at_broker.missing)
    figures.repeated = at_broker.repeats + worked_at_broker.repeats
    figures.executed_expected = executed.expected
    figures.executed_missing = len(executed.missing)
    figures.executed_twice = executed.repeats

    assert at_broker.exact, at_broker.describe("parked queue")
    assert worked_at_broker.exact, worked_at_broker.describe("claims of the worked job")
    assert executed.exact, executed.describe("executions")
    assert not fenced_claims(claims), fenced_claims(claims)[:10]
    assert not wrong_task_ids(messages, cluster.namespace)
    assert len({m.task_id for m in messages}) == len(messages), "a task id went out twice"


@pytest.mark.integration
@pytest.mark.timeout(TIMEOUT_S)
def test_killed_leaders_rabbitmq_outbox_loses_nothing(
    cluster: ChaosCluster, figures: Figures, rabbitmq_url: str, queue_prefix: str
) -> None:
    figures.scenario = "kill leader, RabbitMQ via outbox"
    parked_queue, worked_queue = f"{queue_prefix}-parked", f"{queue_prefix}-worked"
    cluster.configure(
        namespace="chaos-kill-amqp",
        lease_ttl="1s",
        jobs=jobs(parked_queue, worked_queue),
        extra_settings={"broker_url": rabbitmq_url},
    )
    parked = AmqpQueueReader(rabbitmq_url, parked_queue)
    try:
        parked.declare()
        worker = cluster.start_worker(worked_queue)
        cluster.bring_up_all(*NODES, worker=worker)
        first_s, last_s = kill_repeatedly(cluster, figures)
        cluster.wait_executed([WORKED_JOB], last_s + 2)
        cluster.wait_for_parked(parked, PARKED_JOBS, last_s + 2)
    finally:
        cluster.children.kill_all()  # nothing may declare the queues again after we delete them
        parked.poll()
        parked.close_and_delete()
        delete_amqp_queues(rabbitmq_url, [worked_queue])
    assert not amqp_queue_exists(rabbitmq_url, parked_queue)
    assert not amqp_queue_exists(rabbitmq_url, worked_queue)

    messages = parked.messages
    claims = cluster.claims()
    at_broker = tally(pairs_of(messages), PARKED_JOBS, first_s, last_s)
    claimed = tally(pairs_of(claims), (*PARKED_JOBS, WORKED_JOB), first_s, last_s)
    executed = tally(pairs_of(cluster.executions()), [WORKED_JOB], first_s, last_s)
    figures.slots_expected = at_broker.expected
    figures.missing = len(at_broker.missing)
    figures.repeated = at_broker.repeats
    figures.executed_expected = executed.expected
    figures.executed_missing = len(executed.missing)
    figures.executed_twice = executed.repeats

    assert claimed.exact, claimed.describe("claims")  # the claim itself is fencing-checked
    assert at_broker.complete, at_broker.describe("parked queue")
    assert not wrong_task_ids(messages, cluster.namespace)  # so a repeat has the same id
    assert not first_seen_out_of_order(messages, PARKED_JOBS)
    assert executed.complete, executed.describe("executions")
    assert executed.repeats == 0, executed.describe("executions")
    assert not fenced_claims(claims), fenced_claims(claims)[:10]
