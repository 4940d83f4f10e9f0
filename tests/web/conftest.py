"""Fixtures for the HTTP listener: in-process nodes (as tests/node's Rig, with the listener on
a free port) and a scrape parsed into values, so a test asserts numbers, not names."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.config import load_config
from scheduler.http_server import StatusServer
from scheduler.node import Node
from tests.conftest import RedisServer
from tests.integration.harness import Children, Cluster, write_config
from tests.node.conftest import Rig, whole_second_clock

HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: str


def get(address: tuple[str, int], path: str, method: str = "GET") -> Reply:
    """One request to the listener at `address`; any status, never raising for it."""
    host, port = address
    request = urllib.request.Request(f"http://{host}:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return Reply(
                response.status, response.headers["Content-Type"], response.read().decode()
            )
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers["Content-Type"], exc.read().decode())


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (sample name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for (n, labels) in samples if n == name and label in dict(labels)}


def scrape(address: tuple[str, int]) -> Samples:
    reply = get(address, "/metrics")
    assert reply.status == 200, reply.body
    return parse(reply.body)


@dataclass
class WebRig(Rig):
    """A Rig whose node serves HTTP on a free loopback port (started; stopped at teardown)."""

    http: StatusServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.http is not None
        assert self.http.address is not None
        return self.http.address

    def scrape(self) -> Samples:
        return scrape(self.address)


WebRigFactory = Callable[..., WebRig]


@pytest.fixture
def web_rig(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> Iterator[WebRigFactory]:
    caplog.set_level(logging.INFO)
    made: list[WebRig] = []

    def make(
        jobs: Mapping[str, Mapping[str, object]], *, node_id: str = "n1", **settings: object
    ) -> WebRig:
        extra: dict[str, object] = {"max_clock_offset": "5s", **settings}
        path = write_config(
            tmp_path / f"{node_id}.toml", redis_url=redis_server.url, jobs=jobs,
            lease_ttl="2s", extra_settings=extra,
        )  # fmt: skip
        clock = whole_second_clock()
        node = Node(load_config(path), node_id, clock)
        # The config refuses port 0; a test binds a free port the way start() does.
        node.http = StatusServer(node, ("127.0.0.1", 0))
        rig = WebRig(node, clock, redis_server.client(), path, http=node.http)
        made.append(rig)
        node.http.start()
        return rig

    yield make
    for rig in made:
        rig.node.http.stop()
        rig.node.factory.close()


@pytest.fixture
def cluster(children: Children, redis_server: RedisServer, tmp_path: Path) -> Cluster:
    """Real `scheduler run` nodes on the private Redis; `configure` it first."""
    return Cluster(children, tmp_path / "scheduler.toml", redis_server.url)
