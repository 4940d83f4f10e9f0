"""A broker hiccup is retried within the publish (kombu's retry policy, bounded), on top of
the outbox: a connection RabbitMQ reset costs the slot no pause."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from kombu import Connection

from tests.chaos.proxy import CutMode, TcpProxy
from tests.node.conftest import Rig

RigFactory = Callable[..., Rig]


@pytest.fixture
def proxied_rabbitmq(rabbitmq_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """The machine's RabbitMQ behind a proxy the test can cut."""
    target = urlsplit(rabbitmq_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672, "rabbitmq") as proxy:
        yield rabbitmq_url.replace(f":{target.port or 5672}", f":{proxy.port}", 1), proxy


def test_a_reset_broker_connection_is_retried_within_the_publish(
    rig_factory: RigFactory, rabbitmq_url: str, proxied_rabbitmq: tuple[str, TcpProxy]
) -> None:
    url, proxy = proxied_rabbitmq
    queue = f"sched-test-{uuid.uuid4().hex[:8]}-retry"
    rig = rig_factory(
        {"j1": {"task": "jobs.examples.ping", "every": "1s", "queue": queue}}, broker_url=url
    )
    assert not rig.node.atomic
    publisher = rig.node.publisher
    try:
        rig.lead()
        rig.tick()
        value = rig.node.lease.value
        assert value is not None
        assert publisher.drain(value) == 1  # the publisher's connection is open now
        proxy.cut(CutMode.RESET)  # RabbitMQ drops every connection...
        proxy.restore()  # ...and is back at once
        rig.tick()
        assert publisher.drain(value) == 1  # reconnected and sent in the same drain
        assert rig.redis.llen(rig.node.keys.outbox) == 0
    finally:
        publisher.close()
        with Connection(rabbitmq_url, connect_timeout=5) as connection:
            declared = connection.default_channel.queue_declare(queue, passive=True)
            assert declared.message_count == 2  # each slot once
            connection.default_channel.queue_delete(queue)
