"""Fixtures of the chaos suite: child processes that always die at teardown, a cluster around a
private Redis, proxies, restartable Redis servers, a Sentinel group, RabbitMQ queue names of
our own, and the figures every test records whatever its outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CALL_REPORT_KEY, RedisServer
from tests.integration.harness import Children

from .nodes import ChaosCluster
from .proxy import TcpProxy
from .results import Figures, record
from .servers import RedisProcess, SentinelGroup


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """Fill it in; it is appended to the results file at teardown, with the test's outcome."""
    measured = Figures(scenario=request.node.name)
    started = time.monotonic()
    yield measured
    report = request.node.stash.get(CALL_REPORT_KEY, None)
    outcome = "passed" if report is not None and report.passed else "failed"
    record(
        measured,
        test_id=request.node.nodeid,
        outcome=outcome,
        duration_s=time.monotonic() - started,
    )


@pytest.fixture
def cluster(children: Children, redis_server: RedisServer, tmp_path: Path) -> ChaosCluster:
    """Nodes and workers on a private Redis (state and broker); `configure` it first."""
    return ChaosCluster(children, tmp_path / "scheduler.toml", redis_server.url)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server the test starts, kills and restarts on one port; killed at teardown."""
    server = RedisProcess(tmp_path / "redis-restartable")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A master, a replica and three sentinels, all watching each other before the test runs."""
    group = SentinelGroup(tmp_path / "sentinel-group")
    try:
        group.start()
        yield group
    finally:
        group.close()


@pytest.fixture
def proxy() -> Iterator[Callable[[int, str], TcpProxy]]:
    """Make started proxies to 127.0.0.1:<port>; all closed at teardown."""
    made: list[TcpProxy] = []

    def make(target_port: int, name: str = "proxy") -> TcpProxy:
        started = TcpProxy("127.0.0.1", target_port, name).start()
        made.append(started)
        return started

    try:
        yield make
    finally:
        for each in made:
            each.close()


@pytest.fixture
def queue_prefix() -> str:
    """A prefix no other test (or run) uses, for queue names on the shared RabbitMQ."""
    return f"sched-chaos-{uuid.uuid4().hex[:8]}"
