"""Every key a leader touches, holding every kind of garbage, while the leader runs: nothing
leaves the loop, no slot is sent twice, and once the garbage is gone the job fires again."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from scheduler.wire import slot_text
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]

# Keys the claim path reads or writes (the lease and fence are the keeper's: tests/store).
KEYS = ["watermarks", "last_fire", "history", "missed", "missed_open", "paused",
        "paused_skips", "outbox", "quarantine", "nodes", "epoch"]  # fmt: skip
JOB_FIELDS = ["watermarks", "last_fire", "missed_open", "paused_skips", "quarantine"]


def write_garbage(client: redis.Redis, key: str, kind: str, field: str) -> None:
    client.delete(key)
    if kind == "string":
        client.set(key, b"\xff\xfe garbage")
    elif kind == "list":
        client.rpush(key, "j1 99999999999999999999 1", b"\xff")
    elif kind == "set":
        client.sadd(key, "x")
    elif kind == "zset":
        client.zadd(key, {"x": 1.0})
    elif kind == "stream":
        client.xadd(key, {"x": "y"})
    elif kind.startswith("field:"):
        client.hset(key, field, kind.removeprefix("field:"))


KINDS = ["string", "list", "set", "zset", "stream"]
FIELD_VALUES = ["field:1e300", "field:-1", "field:inf", "field:garbage", "field:\xff",
                "field:999999999999", "field:1 2 3", "field:"]  # fmt: skip
CASES = [(key, kind) for key in KEYS for kind in KINDS] + [
    (key, value) for key in JOB_FIELDS for value in FIELD_VALUES
]


@pytest.mark.parametrize("outbox", [False, True], ids=["same-redis", "outbox"])
def test_garbage_at_any_key_never_stops_the_loop_nor_repeats_a_slot(
    rig_factory: RigFactory, redis_server: object, outbox: bool
) -> None:
    broker = redis_server.url.replace("/0", "/1") if outbox else None  # type: ignore[attr-defined]
    rig = rig_factory({"a": {"task": "t", "every": "1s", "queue": QUEUE, "misfire_grace": "1h"}},
                      broker_url=broker, max_clock_offset="1h")  # fmt: skip
    rig.lead()
    node = rig.node
    swept = 0
    for name, kind in CASES:
        key = f"it:{name}"
        write_garbage(rig.redis, key, kind, "a")
        rig.tick()  # must not raise, whatever the key holds
        rig.redis.delete(key)
        for corrupt in rig.redis.scan_iter("it:*:corrupt:*"):
            rig.redis.delete(corrupt)  # set aside by the leader: tidied for the next case
        rig.clock.mono_s += 11  # past the quarantine's retry
        rig.tick()
        rig.tick()
        assert node.lease.value is not None, f"{key} {kind}: the node stopped leading"
        newest = slot_text(int(rig.clock.wall_s))
        sent = rig.outbox() if outbox else rig.fired()
        assert ("a", newest) in sent, f"{key} {kind}: a does not fire again"
        swept += 1
    sent = rig.outbox() if outbox else rig.fired()
    assert max(Counter(sent).values()) == 1  # no slot sent twice, across every case
    assert swept == len(CASES) == 95
    assert json.loads(json.dumps(node.heartbeat.record()))  # the node record stays JSON
