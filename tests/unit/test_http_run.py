"""jobs.http_run against a real local http.server: method, headers and JSON body as sent, the
status judged against `expect`, the body's first KiB, timeouts and refused connections."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.http_run import BODY_BYTES, Request, expected, make_request
from tests.conftest import free_port


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """A threaded http.server answering every request with `status` and `body` (after
    `delay` is set, once it is released), recording each request."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    body: bytes = b'{"ok": true}'
    release: threading.Event = field(default_factory=threading.Event)
    hold: bool = False


def serve() -> tuple[ThreadingHTTPServer, LocalServer]:
    state = LocalServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )
            if state.hold:
                state.release.wait(10)  # bounded: the test releases it when done
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(state.body)

        # http.server's handler names, one per method.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test asserts on `requests`

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, state


@pytest.fixture
def local() -> Iterator[LocalServer]:
    server, state = serve()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_post_sends_method_headers_and_json_and_keeps_the_body(local: LocalServer) -> None:
    request = Request(
        "POST", f"{local.url}/hooks/nightly", {"X-Token": "abc"}, {"run": [1, 2]}, 5.0, (200, 204)
    )
    response = make_request(request)
    assert (response.status, response.error, response.body) == (200, None, '{"ok": true}')
    [seen] = local.requests
    assert (seen.method, seen.path) == ("POST", "/hooks/nightly")
    assert seen.headers["X-Token"] == "abc"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {"run": [1, 2]}
    assert response.detail().startswith("HTTP 200 in ")
    assert response.detail().endswith('s\nbody:\n{"ok": true}')


def test_a_get_without_json_sends_no_body(local: LocalServer) -> None:
    response = make_request(Request("GET", f"{local.url}/ping"))
    assert response.status == 200
    [seen] = local.requests
    assert (seen.method, seen.body, "Content-Length" in seen.headers) == ("GET", b"", False)


def test_a_status_not_expected_is_a_failure(local: LocalServer) -> None:
    local.status, local.body = 503, b"down for maintenance"
    response = make_request(Request("PUT", f"{local.url}/x", expect=(200, 204)))
    assert response.status == 503
    assert response.error == f"HTTP 503 from PUT {local.url}/x, expected 200, 204"
    assert response.body == "down for maintenance"
    local.status = 201
    assert make_request(Request("DELETE", f"{local.url}/x")).error is None  # any 2xx
    local.status = 301
    answer = make_request(Request("GET", f"{local.url}/x"))  # a redirect is not followed
    assert answer.error == f"HTTP 301 from GET {local.url}/x, expected 2xx"


def test_only_the_first_kib_of_the_body_is_kept(local: LocalServer) -> None:
    local.body = b"x" * 100_000
    response = make_request(Request("GET", local.url))
    assert response.body == "x" * BODY_BYTES


def test_a_timeout_is_one_line(local: LocalServer) -> None:
    local.hold = True
    response = make_request(Request("GET", f"{local.url}/slow", timeout_s=0.3))
    assert response.status is None
    assert response.error == f"timed out after 0.3s: GET {local.url}/slow"
    assert 0.3 <= response.duration_s < 3


def test_a_refused_connection_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    response = make_request(Request("POST", url, json={}))
    assert response.status is None
    assert response.error == f"POST {url}: ConnectError: [Errno 111] Connection refused"


def test_expected() -> None:
    assert [expected(s, ()) for s in (199, 200, 204, 299, 300, 302)] == [0, 1, 1, 1, 0, 0]
    assert [expected(s, (302,)) for s in (200, 302)] == [False, True]
