"""Outbox entries that are not messages this package wrote: each is quarantined, under the
fencing check, with one log line, and the entries behind it are published in order. The broker
is a second database of the same redis-server, which the node treats as another broker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from scheduler.errors import LeaseLost
from tests.conftest import RedisServer
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

GARBAGE = [
    b"j1 99999999999999999999 1",  # the outbox's format of old
    b'{"headers": [], "body": "", "properties": {}}',  # JSON of the wrong shape
    b"\xff\xfe not utf-8",
    json.dumps(
        {
            "headers": {"scheduler_job": "j1", "scheduler_slot": "x"},
            "body": "not base64!",
            "properties": {"body_encoding": "base64", "delivery_info": {}},
        }
    ).encode(),
]
REASONS = ["not JSON", "no headers object", "not UTF-8", "body is not base64"]


def broker_of(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=redis_server.port, db=1, socket_timeout=2.0)


def delivered(broker: redis.Redis) -> list[tuple[str, str]]:
    """(job, slot) of each message the broker's queue holds, oldest first."""
    raw = broker.lrange(QUEUE, 0, -1)[::-1]
    found = [json.loads(payload)["headers"] for payload in raw]  # type: ignore[union-attr]
    return [(headers["scheduler_job"], headers["scheduler_slot"]) for headers in found]


def test_garbage_is_quarantined_and_the_rest_published_in_order(
    rig_factory: RigFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory(
        {"j1": {"task": "jobs.examples.ping", "every": "1s", "queue": QUEUE}},
        broker_url=f"redis://127.0.0.1:{redis_server.port}/1",
    )
    assert not rig.node.atomic
    rig.lead()
    rig.tick()
    outbox = rig.node.keys.outbox
    rig.redis.rpush(outbox, GARBAGE[0], GARBAGE[1])
    rig.tick()
    rig.redis.rpush(outbox, GARBAGE[2], GARBAGE[3])
    rig.tick()
    genuine = [
        (headers["scheduler_job"], headers["scheduler_slot"])
        for raw in rig.redis.lrange(outbox, 0, -1)  # type: ignore[union-attr]
        if raw not in GARBAGE
        for headers in [json.loads(raw)["headers"]]
    ]
    assert len(genuine) == 3
    value = rig.node.lease.value
    assert value is not None

    assert rig.node.publisher.drain(value) == 3
    rig.node.publisher.close()

    assert rig.redis.llen(outbox) == 0
    assert rig.redis.lrange(rig.node.keys.outbox_quarantine, 0, -1) == GARBAGE
    assert delivered(broker_of(redis_server)) == genuine
    lines = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(lines) == len(GARBAGE)
    for line, reason, raw in zip(lines, REASONS, GARBAGE, strict=True):
        assert reason in line, line
        assert repr(raw[:20])[:-1] in line
        assert rig.node.keys.outbox_quarantine in line


def test_quarantine_is_fenced_and_moves_only_the_head(
    rig_factory: RigFactory, redis_server: RedisServer
) -> None:
    rig = rig_factory(
        {"j1": {"task": "jobs.examples.ping", "every": "1h", "queue": QUEUE}},
        broker_url=f"redis://127.0.0.1:{redis_server.port}/1",
    )
    rig.lead()
    outbox, quarantine = rig.node.keys.outbox, rig.node.keys.outbox_quarantine
    rig.redis.rpush(outbox, b"first", b"second")
    value = rig.node.lease.value
    assert value is not None
    with pytest.raises(LeaseLost):
        rig.node.claims.outbox_quarantine(value + "-stale", b"first")
    assert not rig.node.claims.outbox_quarantine(value, b"second")  # not the head
    assert rig.redis.lrange(quarantine, 0, -1) == []
    assert rig.node.claims.outbox_quarantine(value, b"first")
    assert not rig.node.claims.outbox_quarantine(value, b"first")  # a resend moves nothing
    assert rig.redis.lrange(outbox, 0, -1) == [b"second"]
    assert rig.redis.lrange(quarantine, 0, -1) == [b"first"]
