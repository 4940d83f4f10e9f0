"""What /metrics exposes: the node's state, read at each scrape, and its NodeStats counters,
as Prometheus metric families on a registry of the node's own (tests run several nodes in
one process).

In-process facts are always there; what lives in Redis (last successes, outbox depth) is read
in one pipelined round trip and left out, with `scheduler_scrape_redis_up 0`, when Redis does
not answer. Per-job series cover at most `metrics_jobs_max` jobs (the first by name);
totals always cover every job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from scheduler import __version__
from scheduler.metrics import HistogramSnapshot

if TYPE_CHECKING:
    from scheduler.node import Node

log = logging.getLogger(__name__)

# HMGET fields per command: one round trip in all, but no single huge reply.
REDIS_CHUNK = 1000


class NodeCollector(Collector):
    """Reads the node at each scrape; nothing is registered up front (no describe)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        node.stats.follow(lambda: node.jobset.jobs, lambda: _jobs_max(node))

    def describe(self) -> list[Metric]:
        return []  # so registering does not collect (and read Redis)

    def collect(self) -> Iterator[Metric]:
        node, stats = self.node, self.node.stats
        labelled = sorted(stats.labelled())
        snap = stats.snapshot()
        yield _info("build", "The scheduler's version", version=__version__)
        yield _info("config", "Hash of the config this node runs", hash=node.config.hash)
        yield _gauge("jobs", "Jobs this node runs (config and runtime)", len(node.jobset.jobs))
        yield _gauge("metrics_jobs_labelled", "Jobs with per-job series", len(labelled))
        fires = CounterMetricFamily(
            "scheduler_fires", "Due slots by outcome, every job", labels=["outcome"]
        )
        for outcome, n in sorted(snap.fires.items()):
            fires.add_metric([outcome], n)
        yield fires
        job_fires = CounterMetricFamily(
            "scheduler_job_fires",
            "Due slots by job and outcome (bounded jobs)",
            labels=["job", "outcome"],
        )
        for (job, outcome), n in sorted(snap.job_fires.items()):
            job_fires.add_metric([job, outcome], n)
        yield job_fires
        yield _by("slots_missed", "Slots recorded as missed, by reason", "reason", snap.missed)
        yield _by("slots_skipped", "Slots not sent on purpose, by reason", "reason", snap.skipped)
        yield _histogram("fire_lateness_seconds", "Slot to enqueue, enqueued fires", snap.lateness)
        yield _histogram("loop_duration_seconds", "One pass of the main loop", snap.loop)
        yield from self._node_state(node)
        yield from self._next_fires(node, labelled)
        yield from self._from_redis(node, labelled)

    @staticmethod
    def _node_state(node: Node) -> Iterator[Metric]:
        lease, heartbeat = node.lease, node.heartbeat
        yield _gauge("is_leader", "1 while this node holds the lease", int(lease.held()))
        token = lease.token
        if token is not None:
            yield _gauge("fencing_token", "Fencing token of the lease this node holds", token)
        yield _counter("lease_renewals", "Renewals that extended the lease", lease.renewals)
        yield _counter(
            "lease_renewal_failures",
            "Renewals that failed or found the lease gone",
            lease.renewal_failures,
        )
        yield _gauge("loop_alive", "1 while the main loop turns", int(node.loop_alive()))
        yield _gauge("joined", "1 while the heartbeat reaches Redis", int(node.heartbeat.joined))
        yield _gauge(
            "clock_ok", "1 while the clock agrees with Redis TIME", int(heartbeat.clock_ok)
        )
        yield _gauge("clock_offset_seconds", "Redis TIME minus this clock", heartbeat.offset_s)
        yield _gauge(
            "quarantined_jobs",
            "Jobs set aside for a wrong value in Redis",
            len(node.quarantine.jobs),
        )
        yield _gauge(
            "restart_needed_keys",
            "[scheduler] keys a reload changed that need a restart",
            len(getattr(node, "restart_needed", ())),
        )

    @staticmethod
    def _next_fires(node: Node, labelled: list[str]) -> Iterator[Metric]:
        engine = node.engine  # read once: the main loop may drop it meanwhile
        if engine is None:
            return
        soonest = engine.next_slot_s()
        if soonest is not None:
            yield _gauge("next_fire_timestamp_seconds", "The soonest next slot of any job", soonest)
        per_job = GaugeMetricFamily(
            "scheduler_job_next_fire_timestamp_seconds", "Next slot of each job", labels=["job"]
        )
        slots = engine.next_slots(frozenset(labelled))
        for job in labelled:
            if job in slots:
                per_job.add_metric([job], slots[job])
        yield per_job

    @staticmethod
    def _from_redis(node: Node, labelled: list[str]) -> Iterator[Metric]:
        client, keys = node.claims.client, node.keys
        try:
            pipe = client.pipeline(transaction=False)
            pipe.llen(keys.outbox)
            for start in range(0, len(labelled), REDIS_CHUNK):
                pipe.hmget(keys.last_success, labelled[start : start + REDIS_CHUNK])
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            log.debug("scrape: Redis unavailable: %s", exc)
            yield _gauge("scrape_redis_up", "1 when this scrape read Redis", 0)
            return
        yield _gauge("scrape_redis_up", "1 when this scrape read Redis", 1)
        depth, *chunks = replies
        if isinstance(depth, int):  # an error reply: the key holds another type
            yield _gauge("outbox_messages", "Claimed slots waiting in the outbox", depth)
        success = GaugeMetricFamily(
            "scheduler_job_last_success_timestamp_seconds",
            "When a worker last reported a run of the job succeeded",
            labels=["job"],
        )
        values = [v for chunk in chunks for v in (chunk if isinstance(chunk, list) else [])]
        for job, raw in zip(labelled, values, strict=False):
            stamp = _seconds(raw)
            if stamp is not None:
                success.add_metric([job], stamp)
        yield success


def metrics_registry(node: Node) -> CollectorRegistry:
    """A registry of this node's own, holding only its collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def _jobs_max(node: Node) -> int:
    return node.config.scheduler.metrics_jobs_max


def _seconds(raw: object) -> float | None:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 1e11 else None


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(f"scheduler_{name}", doc, value=value)


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(f"scheduler_{name}", doc, value=value)


def _info(name: str, doc: str, **labels: str) -> Metric:
    return InfoMetricFamily(f"scheduler_{name}", doc, value=labels)


def _by(name: str, doc: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(f"scheduler_{name}", doc, labels=[label])
    for key, n in sorted(counts.items()):
        family.add_metric([key], n)
    return family


def _histogram(name: str, doc: str, snap: HistogramSnapshot) -> Metric:
    return HistogramMetricFamily(f"scheduler_{name}", doc, buckets=snap.buckets, sum_value=snap.sum)
