"""Alert notifications, delivered off the leader's thread: a webhook POST (httpx) or a Celery
message, each a few tries with backoff, by one daemon thread behind a bounded queue.

Nothing here may hold up the leader: `Notifier.submit` never waits (a full queue drops the
notification, logged), a POST gives up after `TIMEOUT_S`, and the thread starts with the first
notification (importing or constructing starts nothing).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
ATTEMPTS = 4
FIRST_BACKOFF_S = 1.0  # then 2 s, 4 s: a receiver that restarts gets a few seconds
MAX_PENDING = 100
CLOSE_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification: what it is (for the log, never a secret) and how to send it."""

    what: str
    send: Callable[[], None]


class WebhookFailed(Exception):
    """A POST without a 2xx answer; the message never holds the URL's path or query."""


def post_json(url: str, body: dict[str, Any], timeout_s: float = TIMEOUT_S) -> None:
    """POST `body` as JSON; raises WebhookFailed for no answer or an answer other than 2xx."""
    try:
        response = httpx.post(url, json=body, timeout=timeout_s)
    except httpx.HTTPError as exc:  # httpx may name the whole URL: keep its secret part out
        raise WebhookFailed(
            f"{type(exc).__name__}: {str(exc).replace(url, shown_url(url))}"
        ) from None
    if not response.is_success:
        raise WebhookFailed(f"answered {response.status_code} {response.reason_phrase}")


def shown_url(url: str) -> str:
    """The URL without its path, query and credentials: webhook paths are often the secret."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/..."


class Notifier:
    """Sends deliveries one at a time on its own daemon thread, retrying each a few times."""

    def __init__(
        self,
        attempts: int = ATTEMPTS,
        first_backoff_s: float = FIRST_BACKOFF_S,
        capacity: int = MAX_PENDING,
    ) -> None:
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s
        self._pending: queue.Queue[Delivery | None] = queue.Queue(capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, delivery: Delivery) -> bool:
        """Queue `delivery` without waiting; False (logged) when the queue is full or closed."""
        if self._stop.is_set():
            log.error("not sending %s: the notifier is stopped", delivery.what)
            return False
        self._start()
        try:
            self._pending.put_nowait(delivery)
        except queue.Full:
            log.error(
                "dropped %s: %d notifications are still waiting to be sent",
                delivery.what,
                self._pending.maxsize,
            )
            return False
        return True

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> None:
        """Stop after the delivery in hand (its backoff is cut short); what waits is dropped."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # then it sees the stop event after this one
            self._pending.put_nowait(None)
        thread.join(timeout=timeout_s)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            delivery = self._pending.get()
            if delivery is None:
                return
            self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                delivery.send()
            except Exception as exc:  # noqa: BLE001 - a receiver's failure is only logged
                if attempt == self.attempts or self._stop.is_set():
                    log.error("gave up sending %s after %d tries: %s", delivery.what, attempt, exc)
                    return
                backoff_s = self.first_backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "sending %s failed (try %d of %d), again in %gs: %s",
                    delivery.what,
                    attempt,
                    self.attempts,
                    backoff_s,
                    exc,
                )
                self._stop.wait(backoff_s)
                continue
            log.info("sent %s", delivery.what)
            return
