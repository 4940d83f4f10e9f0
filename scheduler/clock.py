"""Time, injected: wall time for matching slots, monotonic time for sleeping and deadlines.

The engine and the lease take a `Clock`, so tests drive time instead of patching globals.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall time, epoch seconds (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps; only differences mean anything."""
        ...


class SystemClock:
    """The real clocks; `offset_s` shifts wall time (a test knob to fake a skewed host)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def time(self) -> float:
        return time.time() + self.offset_s

    def monotonic(self) -> float:
        return time.monotonic()


def utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
