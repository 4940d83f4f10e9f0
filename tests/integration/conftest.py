"""Fixtures for integration tests: child processes that always die at teardown, a cluster of
them around a private Redis, and the parked queue they fire onto."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.exceptions import OperationalError

from tests.conftest import RedisServer, missing_server

from .harness import Children, Cluster, ParkedQueue

_children_key = pytest.StashKey[Children]()

# The machine's RabbitMQ (shared: tests use their own queues and delete them); override with
# $TEST_AMQP_URL. Not a SCHEDULER_* variable: child processes never see those from our env.
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    """Attach the tail of every child's log to a failed test's report."""
    report = yield
    children = item.stash.get(_children_key, None)
    if report.failed and children is not None and children.started:
        report.sections.append(("logs of child processes", children.log_tails()))
    return report


@pytest.fixture
def children(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Children]:
    """Start processes through this; all of them are SIGKILLed at teardown, even on failure."""
    group = Children(log_dir=tmp_path / "logs")
    request.node.stash[_children_key] = group
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture
def cluster(children: Children, redis_server: RedisServer, tmp_path: Path) -> Cluster:
    """Nodes and workers on the private Redis (state and broker); `configure` it first."""
    return Cluster(children, tmp_path / "scheduler.toml", redis_server.url)


@pytest.fixture
def parked(children: Children, redis_server: RedisServer) -> ParkedQueue:
    """The parked queue on the private Redis; a wait that times out shows every child's log."""
    return ParkedQueue(redis_server.client(), on_timeout=children.log_tails)


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
