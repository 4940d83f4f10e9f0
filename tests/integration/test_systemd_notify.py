"""A real `scheduler run` talks to systemd: the test plays systemd's side, a unix datagram
socket passed as $NOTIFY_SOCKET, and reads what the node says through start, reload and stop.
The node logs JSON lines meanwhile: every line of its output must parse."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .harness import Child, Cluster, every_second

NAMESPACE = "it-notify"


@dataclass
class SystemdSide:
    """Every datagram the node sent, in order; waits block on the socket, bounded."""

    sock: socket.socket
    path: Path
    messages: list[str] = field(default_factory=list)

    def wait_for(
        self,
        matches: Callable[[str], bool],
        what: str,
        node: Child,
        *,
        after: int = -1,
        timeout_s: float = 30.0,
    ) -> int:
        """The index of the first message past index `after` (old or new) that `matches`,
        receiving until there is one."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index, message in enumerate(self.messages):
                if index > after and matches(message):
                    return index
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise TimeoutError(f"no {what} in {self.messages}\n{node.tail()}")
            self.sock.settimeout(left_s)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[SystemdSide]:
    path = tmp_path / "notify.sock"
    assert len(str(path)) < 108, "unix socket paths are limited to 107 bytes"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield SystemdSide(sock, path)


def start(cluster: Cluster, systemd: SystemdSide) -> Child:
    cluster.configure(namespace=NAMESPACE, jobs={"tick": every_second(), "tock": every_second()})
    return cluster.start_node(
        "n1", args=["--log-format", "json"], env={"NOTIFY_SOCKET": str(systemd.path)}
    )


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda message: message.startswith(prefix)


def assert_json_lines(node: Child) -> list[dict[str, object]]:
    records = [json.loads(line) for line in node.log_text().splitlines()]
    assert records, "the node logged nothing"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    return records


def stop(node: Child, systemd: SystemdSide) -> None:
    node.signal(signal.SIGTERM)
    assert node.wait_exit(15) == 0, node.tail()
    systemd.drain()
    assert systemd.messages[-1] == "STOPPING=1", systemd.messages
    assert systemd.messages.count("STOPPING=1") == 1


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_start_then_stop_in_order(cluster: Cluster, systemd: SystemdSide) -> None:
    node = start(cluster, systemd)
    ready = systemd.wait_for(lambda m: m == "READY=1", "READY=1", node)
    leading = systemd.wait_for(starts_with("STATUS=leader, 2 jobs, next in "), "leader", node)
    first_status = systemd.wait_for(starts_with("STATUS="), "a STATUS=", node)
    # Joined first: no status line before READY=1, none says "leader" before it.
    assert ready < first_status <= leading, systemd.messages
    assert systemd.messages[:ready] == []
    systemd.wait_for(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", node)
    statuses = [m for m in systemd.messages if m.startswith("STATUS=")]
    # Sent on change only: never the same text twice in a row.
    assert all(a != b for a, b in itertools.pairwise(statuses)), statuses
    stop(node, systemd)
    records = assert_json_lines(node)
    assert any(r["message"] == "node n1 stopped" for r in records)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_reload_by_sighup_says_reloading_then_ready(cluster: Cluster, systemd: SystemdSide) -> None:
    node = start(cluster, systemd)
    ready = systemd.wait_for(lambda m: m == "READY=1", "READY=1", node)
    systemd.wait_for(starts_with("STATUS=leader, "), "leader", node)
    before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    node.signal(signal.SIGHUP)
    # A reload reads and applies a two-job config well within a second.
    reloading = systemd.wait_for(
        starts_with("RELOADING=1"), "RELOADING=1", node, after=ready, timeout_s=10
    )
    first, usec = systemd.messages[reloading].split("\n")
    assert first == "RELOADING=1"
    assert usec.startswith("MONOTONIC_USEC=")
    # The node's CLOCK_MONOTONIC is ours (one host): the stamp falls after the SIGHUP.
    assert before_us <= int(usec.removeprefix("MONOTONIC_USEC=")) <= before_us + 30_000_000
    systemd.wait_for(
        lambda m: m == "READY=1", "READY=1 after the reload", node, after=reloading, timeout_s=10
    )
    stop(node, systemd)
    assert any(str(r["message"]).startswith("config reloaded") for r in assert_json_lines(node))
