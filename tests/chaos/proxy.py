"""A TCP proxy the test owns: the one place where a chaos test cuts a network path.

It listens on a free loopback port and forwards every connection to a target. `cut()` breaks
the path in one of two ways, and `restore()` heals it:

- ``RESET``: every open connection is closed at once, and a new one is accepted and closed
  straight away, so clients see "connection reset / closed" immediately (a broker or Redis
  that went away).
- ``BLACKHOLE``: open connections stay open but nothing is forwarded either way, and new
  ones are accepted and then ignored, so clients only learn of it through their own timeouts
  (a network partition). On `restore()` the connections that lived through the cut are closed,
  so no stale request reaches the target after the partition heals.

The proxy runs an asyncio loop on its own thread; `cut` and `restore` return only once the
loop has applied them, so a test can take the instant they return as the instant of the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK_BYTES = 65_536
CONTROL_TIMEOUT_S = 10.0


class CutMode(enum.Enum):
    RESET = "reset"
    BLACKHOLE = "blackhole"


@dataclass
class ProxyStats:
    accepted: int = 0  # connections accepted while the path was open
    refused: int = 0  # connections accepted during a cut (closed or ignored)
    cuts: int = 0


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    # Abort rather than close: a cut should look like a reset, not a goodbye.
                    writer.transport.abort()


class TcpProxy:
    """Forward 127.0.0.1:<port> to `target_host:target_port` until cut."""

    def __init__(self, target_host: str, target_port: int, name: str = "proxy") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.name = name
        self.port = 0
        self.stats = ProxyStats()
        self._mode: CutMode | None = None  # None: the path is open
        self._flowing: asyncio.Event | None = None
        self._pairs: set[_Pair] = set()
        self._held: set[asyncio.StreamWriter] = set()  # accepted during a black-hole cut
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    # -- life cycle, from the test's thread --------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CONTROL_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    def cut(self, mode: CutMode = CutMode.RESET) -> None:
        """Break the path now (see the module docstring for what each mode does)."""
        self._call(self._cut(mode))

    def restore(self) -> None:
        """Heal the path: new connections are forwarded again."""
        self._call(self._restore())

    def open_connections(self) -> int:
        return len(self._pairs)

    # -- inside the loop ---------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=CONTROL_TIMEOUT_S)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.close()
        self._pairs.clear()
        self._drop_held()

    async def _cut(self, mode: CutMode) -> None:
        assert self._flowing is not None
        self.stats.cuts += 1
        self._mode = mode
        if mode is CutMode.RESET:
            for pair in list(self._pairs):
                pair.close()
            self._pairs.clear()
        else:
            self._flowing.clear()  # pumps stop forwarding; the sockets stay open

    async def _restore(self) -> None:
        assert self._flowing is not None
        if self._mode is CutMode.BLACKHOLE:
            # Connections that lived through the partition are reset, never resumed.
            for pair in list(self._pairs):
                pair.close()
            self._pairs.clear()
            self._drop_held()
        self._mode = None
        self._flowing.set()

    def _drop_held(self) -> None:
        for writer in self._held:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._held.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode is CutMode.RESET:
            self.stats.refused += 1
            writer.transport.abort()
            return
        if self._mode is CutMode.BLACKHOLE:
            self.stats.refused += 1
            self._held.add(writer)  # accepted, never answered; dropped on restore
            return
        self.stats.accepted += 1
        pair = _Pair(writer)
        self._pairs.add(pair)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            self._pairs.discard(pair)
            pair.close()
            return
        pair.upstream = up_writer
        if pair not in self._pairs:  # cut while we were connecting
            pair.close()
            return
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, pair)),
            asyncio.create_task(self._pump(up_reader, writer, pair)),
        ]

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pair: _Pair
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                await self._flowing.wait()
                data = await source.read(CHUNK_BYTES)
                if not data:
                    break
                await self._flowing.wait()  # read before a black-hole cut: hold it, never send
                if pair not in self._pairs:
                    return
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if pair in self._pairs:
                self._pairs.discard(pair)
                pair.close()
