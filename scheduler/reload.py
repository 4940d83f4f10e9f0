"""Reading a changed config off the leader loop, in bounded time for the loop.

A SIGHUP must never kill or wedge a running node: the file may have become a FIFO, sit on a
hung network mount, hold a value no validator foresaw, or take seconds to load (100,000
jobs). So the file is read on a thread of its own; the loop only looks, each turn, whether
the read is done, and keeps firing the running config until a good one is ready. A read that
never returns costs a parked thread, never the loop; a second SIGHUP meanwhile is refused.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from scheduler.clock import Clock
from scheduler.config import Config, load_config
from scheduler.errors import ConfigError

log = logging.getLogger(__name__)

# A read still running after this long is said to be stuck (once); it may still finish.
SLOW_READ_S = 30.0


class PendingReload:
    """One read of the config file, on its own daemon thread (a hung read must not keep the
    process from exiting)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self.started_at = clock.monotonic()
        self.config: Config | None = None
        self.problems: list[str] = []
        self._done = threading.Event()
        self._said_slow = False
        self._thread = threading.Thread(target=self._read, name="reload", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self.config = load_config(self.path)
        except ConfigError as exc:
            self.problems = list(exc.problems) or ["the config is invalid"]
        except Exception as exc:  # whatever the file holds, the running node must live on
            log.debug("reading %s for a reload failed", self.path, exc_info=True)
            self.problems = [f"{self.path.name}: {type(exc).__name__}: {exc}"]
        finally:
            self._done.set()

    def done(self) -> bool:
        """Whether the read ended; says once when it has been running for too long."""
        if self._done.is_set():
            return True
        if not self._said_slow and self.clock.monotonic() - self.started_at >= SLOW_READ_S:
            self._said_slow = True
            log.error(
                "reload: still reading %s after %gs (a FIFO, a hung mount?); the running "
                "config keeps firing",
                self.path,
                SLOW_READ_S,
            )
        return False

    def wait(self, timeout_s: float) -> bool:
        """For tests and shutdown: wait up to `timeout_s` for the read to end."""
        return self._done.wait(timeout_s)
