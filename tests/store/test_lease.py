"""The lease scripts against a real redis-server: acquire, renew, release, fencing tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from scheduler.connections import redis_client
from scheduler.lease import Lease, read_holder
from scheduler.store.keys import Keys
from tests.clocks import ManualClock
from tests.conftest import RedisServer, free_port

KEYS = Keys("test")


def lease(server: RedisServer, node: str, clock: ManualClock, ttl_s: float = 5) -> Lease:
    return Lease(redis_client(server.url), KEYS, node, timedelta(seconds=ttl_s), clock)


def acquired(server: RedisServer, node: str, clock: ManualClock) -> tuple[Lease, int]:
    """A lease `node` has just taken, and the fencing token it got."""
    held = lease(server, node, clock)
    assert held.try_acquire()
    assert held.token is not None
    return held, held.token


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_one_holder_at_a_time(redis_server: RedisServer, clock: ManualClock) -> None:
    a, b = lease(redis_server, "a", clock), lease(redis_server, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    holder = read_holder(redis_server.client(), KEYS)
    assert holder is not None
    assert (holder.node_id, holder.token, holder.nonce) == ("a", a.token, a.nonce)
    assert 0 < holder.left_ms <= 5000


def test_same_node_id_in_two_processes_are_two_owners(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    first, second = lease(redis_server, "same", clock), lease(redis_server, "same", clock)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert not second.renew()


def test_tokens_grow_with_every_lease(redis_server: RedisServer, clock: ManualClock) -> None:
    tokens = []
    for node in ("a", "b", "c"):
        holder, token = acquired(redis_server, node, clock)
        tokens.append(token)
        assert holder.release()
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 3


def test_token_keeps_growing_when_redis_loses_its_data(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    a, old = acquired(redis_server, "a", clock)
    redis_server.client().flushall()
    _, new = acquired(redis_server, "b", clock)
    assert new > old
    assert not a.renew()
    assert a.value is None


def test_release_only_by_the_holder_and_wakes_standbys(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    a, b = lease(redis_server, "a", clock), lease(redis_server, "b", clock)
    assert a.try_acquire()
    assert not b.release()  # b holds nothing
    assert a.release()
    assert read_holder(redis_server.client(), KEYS) is None
    assert redis_server.client().llen(KEYS.handover) > 0
    assert b.try_acquire()


def test_node_deadline_counts_from_when_the_renewal_was_sent(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    a = lease(redis_server, "a", clock, ttl_s=2)
    assert a.try_acquire()
    assert a.held()
    clock.mono_s += 1.79  # just under 90% of the TTL
    assert a.held()
    clock.mono_s += 0.02
    assert not a.held()  # still in Redis, but this node must stop dispatching
    assert a.renew()
    assert a.held()


def test_expired_lease_goes_to_a_standby(redis_server: RedisServer, clock: ManualClock) -> None:
    a, b = lease(redis_server, "a", clock, ttl_s=0.3), lease(redis_server, "b", clock)
    assert a.try_acquire()
    b.wait_for_vacancy(max_wait_s=2)  # returns when the TTL has run out
    assert b.try_acquire()
    assert not a.renew()


def test_acquire_after_lost_reply_is_still_ours(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    a, token = acquired(redis_server, "a", clock)
    a.forget()  # as if the acquire reply had been lost
    assert a.try_acquire()
    assert a.token == token


def test_unreachable_redis_raises_fast(clock: ManualClock) -> None:
    dead = Lease(
        redis_client(f"redis://127.0.0.1:{free_port()}/0"), KEYS, "a", timedelta(seconds=1), clock
    )
    with pytest.raises(redis.ConnectionError):
        dead.try_acquire()
