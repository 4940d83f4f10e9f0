"""The node's HTTP listener: /metrics (Prometheus), /healthz, /readyz and the status page `/`.

stdlib `ThreadingHTTPServer` rather than wsgiref with prometheus_client's WSGI app: four fixed
routes need no framework, and it gives what a daemon's side door needs in a few lines: daemon
threads, a socket timeout per connection, and a cap on connections served at once. Only GET
and HEAD; request lines and headers are bounded by http.server (64 KiB a line, 100 headers),
and no body is ever read.

/metrics is built at scrape time by `NodeCollector` on a registry of this node's own (tests
run several nodes in one process): in-process facts always; what lives in Redis (last
successes, outbox depth) in one pipelined round trip, left out with `scheduler_scrape_redis_up
0` when Redis does not answer.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from scheduler import __version__
from scheduler.errors import ConfigError
from scheduler.metrics import HistogramSnapshot
from scheduler.status_page import render_page

if TYPE_CHECKING:
    from scheduler.node import Node

log = logging.getLogger(__name__)

# A client that stops talking loses its thread after this long.
CLIENT_TIMEOUT_S = 5.0
# Connections served at once; more are closed at once (a scrape or a page view is one).
MAX_CONNECTIONS = 16
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
        yield _gauge("joined", "1 while the heartbeat reaches Redis", int(_joined(node)))
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


class StatusServer:
    """The listener; off (no thread, no socket) when `address` is None."""

    def __init__(self, node: Node, address: tuple[str, int] | None) -> None:
        self.node = node
        self._wanted = address
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.registry = metrics_registry(node) if address is not None else None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where it listens once started (port 0 becomes the port bound); else as configured."""
        if self._server is not None:
            host, port = self._server.server_address[:2]
            return str(host), int(port)
        return self._wanted

    def start(self) -> None:
        """Bind and serve on a daemon thread; nothing when off. A bind that fails raises
        ConfigError with one line naming the address."""
        if self._wanted is None or self._server is not None:
            return
        host, port = self._wanted
        server_class = _Server6 if ":" in host else _Server
        try:
            server = server_class((host, port), _Handler)
        except OSError as exc:  # in use, not ours to bind, no such host
            reason = exc.strerror or str(exc)
            raise ConfigError([f"http_listen {host}:{port}: {reason}"]) from None
        server.status = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )
        self._thread.start()
        log.info("serving /metrics, /healthz, /readyz and / on http://%s:%d", host, self._port())

    def _port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket (requests under way finish on their own)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=2)
        self._server = self._thread = None

    # -- routes: (status, content type, body) -------------------------------------------

    def metrics(self, accept: str | None) -> tuple[int, str, bytes]:
        assert self.registry is not None
        encode, content_type = choose_encoder(accept or "")
        return 200, content_type, encode(self.registry)

    def healthz(self) -> tuple[int, str, bytes]:
        if self.node.loop_alive():
            return _text(200, "ok")
        return _text(503, "the main loop has not turned for 3 lease TTLs")

    def readyz(self) -> tuple[int, str, bytes]:
        node = self.node
        if node.lease.held():
            return _text(200, "leader")
        if not _joined(node):
            return _text(503, "not joined: the last heartbeat did not reach Redis")
        if not node.heartbeat.clock_ok:
            return _text(503, "clock not agreed with Redis TIME (max_clock_offset)")
        if not node.loop_alive():
            return _text(503, "the main loop has not turned for 3 lease TTLs")
        return _text(200, "standby")

    def page(self) -> tuple[int, str, bytes]:

        node = self.node
        html = render_page(node.config, node.claims.client, node.clock.time())
        return 200, "text/html; charset=utf-8", html.encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    status: StatusServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # busy: drop it rather than queue threads
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = CLIENT_TIMEOUT_S  # the socket's: a silent client cannot hold a thread forever
    protocol_version = "HTTP/1.0"  # one request per connection: nothing waits for a next one
    server_version = f"scheduler/{__version__}"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def parse_request(self) -> bool:
        """Refuse every method but GET and HEAD, before any of the request is acted on."""
        if not super().parse_request():
            return False
        if self.command in ("GET", "HEAD"):
            return True
        self.close_connection = True
        self._send(405, "text/plain; charset=utf-8", b"only GET and HEAD\n", False, allow=True)
        return False

    def _answer(self, head: bool) -> None:
        status = self.server.status
        path = self.path.split("?", 1)[0]
        routes = {
            "/metrics": lambda: status.metrics(self.headers.get("Accept")),
            "/healthz": status.healthz,
            "/readyz": status.readyz,
            "/": status.page,
        }
        route = routes.get(path)
        if route is None:
            code, kind, body = _text(404, f"no such page: {path[:100]}")
        else:
            try:
                code, kind, body = route()
            except Exception as exc:  # one failing page must not take the listener down
                log.exception("http %s failed", path)
                code, kind, body = _text(500, f"{path} failed: {type(exc).__name__}: {exc}"[:300])
        self._send(code, kind, body, head)

    def _send(self, code: int, kind: str, body: bytes, head: bool, allow: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)


def _text(code: int, line: str) -> tuple[int, str, bytes]:
    one_line = " ".join(line.split())
    return code, "text/plain; charset=utf-8", f"{one_line}\n".encode()


def metrics_registry(node: Node) -> CollectorRegistry:
    """A registry of this node's own, holding only its collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def _jobs_max(node: Node) -> int:
    return int(getattr(node.config.scheduler, "metrics_jobs_max", 1000))


def _joined(node: Node) -> bool:
    return bool(getattr(node.heartbeat, "joined", True))


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
