"""The node's HTTP listener (stub: the metrics helper fills it in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.node import Node


class StatusServer:
    def __init__(self, node: Node, address: tuple[str, int] | None) -> None:
        self.node = node
        self._address = address

    @property
    def address(self) -> tuple[str, int] | None:
        return self._address

    def start(self) -> None:
        """Bind and serve on a daemon thread; nothing when off."""

    def stop(self) -> None:
        """Stop serving and close the socket."""
