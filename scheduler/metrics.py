"""What a node counts for Prometheus (stub: the metrics helper fills it in)."""

from __future__ import annotations

from scheduler.dispatch import Sent
from scheduler.engine import Due


class NodeStats:
    """Counters the node's threads update; cheap enough for the dispatch path."""

    def turned(self, seconds: float) -> None:
        """One pass of the main loop took `seconds`."""

    def dispatched(self, due: Due, sent: Sent, now_s: float) -> None:
        """One dispatch of `due` ended with `sent`, at `now_s`."""
