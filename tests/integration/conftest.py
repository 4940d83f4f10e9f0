"""Fixtures for integration tests: child processes that always die at teardown, a cluster of
them around a private Redis, and the parked queue they fire onto."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RedisServer

from .harness import Children, Cluster, ParkedQueue


@pytest.fixture
def cluster(children: Children, redis_server: RedisServer, tmp_path: Path) -> Cluster:
    """Nodes and workers on the private Redis (state and broker); `configure` it first."""
    return Cluster(children, tmp_path / "scheduler.toml", redis_server.url)


@pytest.fixture
def parked(children: Children, redis_server: RedisServer) -> ParkedQueue:
    """The parked queue on the private Redis; a wait that times out shows every child's log."""
    return ParkedQueue(redis_server.client(), on_timeout=children.log_tails)
