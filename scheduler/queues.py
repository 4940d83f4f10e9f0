"""How the queues that jobs route to or prioritise are declared, the same on both sides.

The scheduler declares a queue when it first publishes to it, and the worker when it starts;
RabbitMQ refuses a second declaration that differs (an x-max-priority, PRECONDITION_FAILED),
and a message published through a named exchange before any queue is bound to it is dropped
by the broker. So both build their declarations here, from the config file's jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kombu import Exchange, Queue, binding

from scheduler.jobspec import JobSpec

# RabbitMQ's x-max-priority of a queue that jobs with a `priority` (0-9) use: Celery's own
# examples use 10, and RabbitMQ keeps one sub-queue per level, so more would cost for nothing.
MAX_PRIORITY = 10


@dataclass(frozen=True)
class QueueDeclaration:
    """How a queue the config's jobs publish to is declared, as plain data (kombu_queue below
    builds kombu's Queue from it): the (exchange, routing key) pairs bound to it, and its
    x-max-priority when a job on it sets a priority (None: a queue without priorities).
    """

    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing_key), exchange "direct"
    max_priority: int | None = None


def queue_declarations(jobs: Iterable[JobSpec]) -> tuple[QueueDeclaration, ...]:
    """The queues the jobs publish to that need more than Celery's default declaration (a
    direct exchange and routing key both named after the queue): those that some job reaches
    through its own exchange or routing key, or with a priority. Sorted by name."""
    bindings: dict[str, dict[tuple[str, str], None]] = {}
    prioritised: set[str] = set()
    routed: set[str] = set()
    for job in jobs:
        queue = job.queue
        exchange = job.exchange or queue
        routing_key = job.routing_key or queue
        pairs = bindings.setdefault(queue, {(queue, queue): None})
        pairs[(exchange, routing_key)] = None
        if (exchange, routing_key) != (queue, queue):
            routed.add(queue)
        if job.priority is not None:
            prioritised.add(queue)
    return tuple(
        QueueDeclaration(name, tuple(bindings[name]), MAX_PRIORITY if name in prioritised else None)
        for name in sorted(routed | prioritised)
    )


def kombu_queue(declaration: QueueDeclaration) -> Queue:
    """The queue as the scheduler declares it (its own direct exchange and key), with every
    other binding the config's jobs publish through, and its priorities."""
    name = declaration.name
    arguments = (
        {"x-max-priority": declaration.max_priority}
        if declaration.max_priority is not None
        else None
    )
    queue = Queue(
        name,
        routing_key=name,
        bindings=[
            binding(Exchange(exchange, "direct"), routing_key=routing_key)
            for exchange, routing_key in declaration.bindings
            if (exchange, routing_key) != (name, name)
        ],
        queue_arguments=arguments,
    )
    # kombu drops the exchange of a queue given bindings, and Celery then puts its "celery"
    # default there, which would route the default queue's tasks here as well.
    queue.exchange = Exchange(name, "direct")
    return queue
