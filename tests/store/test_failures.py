"""Redis's error replies sorted into unavailable (try again) and corrupt (set aside), against
a real redis-server: an out-of-memory refusal is not corrupt data."""

from __future__ import annotations

import pytest
import redis

from scheduler.connections import redis_client
from scheduler.errors import StateCorrupt, StoreUnavailable
from scheduler.store.failures import redis_errors
from scheduler.store.scripts import register
from tests.conftest import RedisServer


def fill(client: redis.Redis) -> None:
    for index in range(10_000):
        client.set(f"fill{index}", "x" * 10_000)


def test_out_of_memory_is_unavailable_and_a_wrong_type_is_corrupt(
    redis_server: RedisServer,
) -> None:
    client = redis_client(redis_server.url)
    client.set("a string", "x")
    with pytest.raises(StateCorrupt), redis_errors("reading a hash"):
        client.hgetall("a string")
    client.config_set("maxmemory", "1mb")
    client.config_set("maxmemory-policy", "noeviction")
    with pytest.raises(StoreUnavailable), redis_errors("filling"):
        fill(client)
    # The claim script is refused up front ("#!lua"), and that refusal is transient too.
    claim = register(client, "claim")
    with pytest.raises(StoreUnavailable) as refused, redis_errors("claiming slots"):
        claim(keys=["l", "w", "f", "h", "m", "p", "s", "o", "g"], args=["v", 1, 1, 0, 1, 0, 0])
    assert "maxmemory" in str(refused.value)
