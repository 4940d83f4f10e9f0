"""Make one http job's request and judge its answer: status in `expect`, or a failure.

No Celery and no Redis here: `make_request` takes the request and returns what happened, so the
rules are tested against a real local server without a worker. httpx (already a dependency,
for the alert webhook) does the HTTP: timeouts per phase, and no redirect followed unless
asked, so a 301 is reported as a 301.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

# How much of the response body history keeps: its first bytes.
BODY_BYTES = 1024
DEFAULT_TIMEOUT_S = 10.0
# What body a request has when the job gives no `json`.
NO_BODY: Any = object()


@dataclass(frozen=True, slots=True)
class Request:
    """What to send: method, URL, headers, an optional JSON body, the timeout, and the
    statuses that count as success (empty: any 2xx)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = NO_BODY
    timeout_s: float = DEFAULT_TIMEOUT_S
    expect: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: the status (None when none did), how long it took, the start of the
    body, and why it failed, if it did."""

    status: int | None
    duration_s: float
    body: str
    error: str | None = None

    def detail(self) -> str:
        """What history shows of the request: its status (or failure), then the body's start."""
        ended = f"HTTP {self.status}" if self.status is not None else self.error
        lines = [f"{ended} in {self.duration_s:.3f}s"]
        if self.body:
            lines.append(f"body:\n{self.body.rstrip(chr(10))}")
        return "\n".join(lines)


def expected(status: int, expect: Sequence[int]) -> bool:
    return status in expect if expect else 200 <= status < 300


def body_excerpt(data: bytes) -> str:
    """The first BODY_BYTES as text, UTF-8 with replacement."""
    return data[:BODY_BYTES].decode("utf-8", errors="replace")


def make_request(request: Request, client: httpx.Client | None = None) -> Response:
    """Send `request` and read at most BODY_BYTES of the answer; every failure is a Response
    with its error line, never an exception."""
    what = f"{request.method} {request.url}"
    started = time.monotonic()
    own = client is None
    client = client or httpx.Client(follow_redirects=False)
    try:
        options: dict[str, Any] = {"headers": dict(request.headers)}
        if request.json is not NO_BODY:
            options["json"] = request.json
        with client.stream(
            request.method, request.url, timeout=httpx.Timeout(request.timeout_s), **options
        ) as answer:
            data = bytearray()
            for chunk in answer.iter_bytes():
                data += chunk
                if len(data) >= BODY_BYTES:
                    break  # the rest is not kept: do not wait for it
            status = answer.status_code
    except httpx.TimeoutException:
        error = f"timed out after {request.timeout_s:g}s: {what}"
        return Response(None, time.monotonic() - started, "", error)
    except httpx.HTTPError as exc:
        error = f"{what}: {type(exc).__name__}: {exc}"
        return Response(None, time.monotonic() - started, "", error)
    finally:
        if own:
            client.close()
    duration = time.monotonic() - started
    body = body_excerpt(bytes(data))
    if expected(status, request.expect):
        return Response(status, duration, body)
    any_2xx = not request.expect or set(request.expect) == set(range(200, 300))
    wanted = "2xx" if any_2xx else ", ".join(map(str, request.expect))
    return Response(status, duration, body, f"HTTP {status} from {what}, expected {wanted}")
