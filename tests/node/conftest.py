"""In-process nodes: a real `Node` on a private redis-server, driven turn by turn with a
`ManualClock`, so the leader loop, dispatch, publisher and heartbeat are tested without
subprocesses or sleeps. The clock starts at the real time, since Redis TIME is part of the
fence: a test moves it by at most the config's `max_clock_offset` (5 s unless it says
otherwise) unless it means a step."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from scheduler.config import load_config
from scheduler.node import Node
from tests.clocks import ManualClock
from tests.conftest import RedisServer
from tests.integration.harness import write_config

QUEUE = "parked"


@dataclass
class Rig:
    """A node, its clock, and a view of what reached the broker."""

    node: Node
    clock: ManualClock
    redis: redis.Redis
    path: Path
    others: list[Node] = field(default_factory=list)

    def lead(self) -> None:
        """Measure the clock, take the lease, and take over (the first turn)."""
        self.node.heartbeat.beat()
        assert self.node.heartbeat.clock_ok, "the manual clock is too far from Redis TIME"
        assert self.node.lease.try_acquire()
        self.node.turn()
        assert self.node.engine is not None

    def tick(self, seconds: float = 1.0) -> None:
        """Move the clock, then run one turn (as the loop does after its wait)."""
        self.clock.advance(seconds)
        self.node.lease.renew()
        self.node.turn()

    def fired(self, queue: str = QUEUE) -> list[tuple[str, str]]:
        """(job, slot) of every message in `queue`, oldest first."""
        raw = self.redis.lrange(queue, 0, -1)[::-1]
        return [_identity(json.loads(payload)) for payload in raw]  # type: ignore[union-attr]

    def outbox(self) -> list[tuple[str, str]]:
        raw = self.redis.lrange(self.node.keys.outbox, 0, -1)
        return [_identity(json.loads(payload)) for payload in raw]  # type: ignore[union-attr]


def _identity(message: Mapping[str, object]) -> tuple[str, str]:
    headers = message["headers"]
    assert isinstance(headers, dict)
    return headers["scheduler_job"], headers["scheduler_slot"]


def whole_second_clock() -> ManualClock:
    """The real time, a hair past a whole second: slots line up with ticks of 1 s."""
    return ManualClock(wall_s=float(int(time.time())) + 0.001)


@pytest.fixture
def rig_factory(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> Iterator[object]:
    caplog.set_level(logging.INFO)
    made: list[Rig] = []

    def make(
        jobs: Mapping[str, Mapping[str, object]],
        *,
        name: str = "scheduler.toml",
        node_id: str = "n1",
        clock: ManualClock | None = None,
        broker_url: str | None = None,
        **settings: object,
    ) -> Rig:
        extra: dict[str, object] = {"max_clock_offset": "5s", **settings}
        path = write_config(
            tmp_path / name, redis_url=redis_server.url, jobs=jobs, lease_ttl="2s",
            extra_settings=extra,
        )  # fmt: skip
        if broker_url is not None:
            text = path.read_text().replace(
                f'broker_url = "{redis_server.url}"', f'broker_url = "{broker_url}"'
            )
            path.write_text(text)
        config = load_config(path)
        own_clock = clock or whole_second_clock()
        rig = Rig(Node(config, node_id, own_clock), own_clock, redis_server.client(), path)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.node.factory.close()
