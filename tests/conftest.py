"""Fixtures shared by every test layer: free ports and a private, throw-away redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis
from kombu import Connection
from kombu.exceptions import OperationalError

from scheduler.zones import use_pinned_tzdata
from tests.integration.harness import Children

# The tests read the zone rules a node reads (the pinned tzdata), whatever this host has.
use_pinned_tzdata()

REDIS_START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_server(what: str) -> NoReturn:
    """Skip locally when a server or tool is absent, saying which; fail in CI (.ci/run sets
    CI=1), where a skip would hide it."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


@dataclass(frozen=True)
class RedisServer:
    port: int
    url: str  # database 0
    log_path: Path

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)


def _wait_for_ping(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited early with code {process.returncode}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.02)  # poll interval, not synchronisation: the loop checks PING
        raise TimeoutError(f"redis-server at {url} did not answer PING within {timeout_s}s")
    finally:
        client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free port, without persistence; never the shared 6379."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing_server("redis-server")
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    port = free_port()
    log_path = data_dir / "redis.log"
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--logfile", str(log_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port=port, url=f"redis://127.0.0.1:{port}/0", log_path=log_path)
    try:
        _wait_for_ping(server.url, process, REDIS_START_TIMEOUT_S)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- child processes and shared servers of the integration and chaos suites -----------------

CHILDREN_KEY = pytest.StashKey[Children]()
CALL_REPORT_KEY = pytest.StashKey[pytest.TestReport]()

# The machine's RabbitMQ (shared: tests use their own queues and delete them); override with
# $TEST_AMQP_URL. Not a SCHEDULER_* variable: child processes never see those from our env.
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    """Attach every child's log tail to a failed test; remember the call's outcome."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT_KEY] = report
    children = item.stash.get(CHILDREN_KEY, None)
    if report.failed and children is not None and children.started:
        report.sections.append(("logs of child processes", children.log_tails()))
    return report


@pytest.fixture
def children(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Children]:
    """Start processes through this; all of them are SIGKILLed at teardown, even on failure."""
    group = Children(log_dir=tmp_path / "logs")
    request.node.stash[CHILDREN_KEY] = group
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture
def rabbitmq_url() -> str:
    """The URL of a reachable RabbitMQ; skips locally when there is none, fails in CI."""
    url = os.environ.get("TEST_AMQP_URL", DEFAULT_AMQP_URL)
    probe = Connection(url, connect_timeout=2)
    unreachable = (OperationalError, *probe.connection_errors, *probe.channel_errors)
    try:
        probe.ensure_connection(max_retries=1)
    except unreachable:
        missing_server(f"RabbitMQ at {probe.as_uri()}")
    finally:
        probe.release()
    return url
