"""The node's HTTP listener: /metrics (Prometheus), /healthz, /readyz and the status page `/`.

stdlib `ThreadingHTTPServer` rather than wsgiref with prometheus_client's WSGI app: four fixed
routes need no framework, and it gives what a daemon's side door needs in a few lines: daemon
threads, a socket timeout per connection, and a cap on connections served at once. Only GET
and HEAD; request lines and headers are bounded by http.server (64 KiB a line, 100 headers),
and no body is ever read.

/metrics is what scheduler/exposition.py builds at each scrape.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import choose_encoder

from scheduler import __version__
from scheduler.errors import ConfigError
from scheduler.exposition import metrics_registry
from scheduler.status_page import render_page

if TYPE_CHECKING:
    from scheduler.node import Node

log = logging.getLogger(__name__)

# A client that stops talking loses its thread after this long.
CLIENT_TIMEOUT_S = 5.0
# Connections served at once; more are closed at once (a scrape or a page view is one).
MAX_CONNECTIONS = 16


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


def _joined(node: Node) -> bool:
    return node.heartbeat.joined
