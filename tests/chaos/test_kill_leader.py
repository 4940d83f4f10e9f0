"""Scenario 1: the leader is SIGKILLed again and again (three nodes; each killed node comes back
under its own id). Same-Redis broker: every slot exactly once at the broker. RabbitMQ through
the outbox: none lost, repeats only under the same task id. Either way the worker hook runs
each slot once, and no token claims after a newer one did."""

from __future__ import annotations

import random

import pytest

from tests.integration.harness import PARKED, catching_up, fired_messages

from .nodes import ChaosCluster
from .observe import (
    amqp_queue_exists,
    fenced_claims,
    owned_amqp_queues,
    pairs_of,
    tally,
    wrong_task_ids,
)
from .results import Figures, pick, seed
from .window import assert_outbox_promise, close_window, count_window, open_window

NODES = ("n1", "n2", "n3")
PARKED_JOBS = ("alpha", "beta")  # their messages stay on a queue nobody consumes: we count them
WORKED_JOB = "worked"  # a worker runs this one: we count its executions
KILLS = pick(5, 100)
TIMEOUT_S = pick(240, 3000)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_S)]


def jobs(parked_queue: str, worked_queue: str) -> dict[str, dict[str, object]]:
    return {
        **catching_up(*PARKED_JOBS, queue=parked_queue),
        **catching_up(WORKED_JOB, queue=worked_queue),
    }


def kill_repeatedly(cluster: ChaosCluster, figures: Figures) -> tuple[int, int]:
    """Kill the leader KILLS times; the window [first, last] of slots that spans every kill."""
    rng = random.Random(seed(figures))
    window_first_s = open_window(cluster, (*PARKED_JOBS, WORKED_JOB))
    for _ in range(KILLS):
        _, gap_s = cluster.kill_leader(rng)
        figures.faults += 1
        figures.gap(gap_s)
    return window_first_s, close_window(cluster, (*PARKED_JOBS, WORKED_JOB), ahead_s=1)


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
    run = count_window(cluster, messages, PARKED_JOBS, first_s, last_s, worked_job=WORKED_JOB)
    # Claim and enqueue are one script here: the worked job's claims are its messages.
    worked_at_broker = tally(pairs_of(run.claims), [WORKED_JOB], first_s, last_s)
    run.record(figures, worked_at_broker)

    assert run.at_broker.exact, run.at_broker.describe("parked queue")
    assert worked_at_broker.exact, worked_at_broker.describe("claims of the worked job")
    assert run.executed.exact, run.executed.describe("executions")
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
    assert not wrong_task_ids(messages, cluster.namespace)
    assert len({m.task_id for m in messages}) == len(messages), "a task id went out twice"


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
    with owned_amqp_queues(
        rabbitmq_url, parked_queue, worked_queue, children=cluster.children
    ) as parked:
        worker = cluster.start_worker(worked_queue)
        cluster.bring_up_all(*NODES, worker=worker)
        first_s, last_s = kill_repeatedly(cluster, figures)
        cluster.wait_executed([WORKED_JOB], last_s + 2)
        cluster.wait_for_parked(parked, PARKED_JOBS, last_s + 2)
    assert not amqp_queue_exists(rabbitmq_url, parked_queue)
    assert not amqp_queue_exists(rabbitmq_url, worked_queue)

    run = count_window(
        cluster, parked.messages, PARKED_JOBS, first_s, last_s, worked_job=WORKED_JOB
    )
    run.record(figures)

    assert_outbox_promise(run, cluster.namespace, PARKED_JOBS)
    assert not fenced_claims(run.claims), fenced_claims(run.claims)[:10]
