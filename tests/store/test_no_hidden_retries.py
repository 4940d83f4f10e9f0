"""Lease and claim clients have no hidden retries: one call is one attempt, over one
connection, and it fails within the client's socket timeout.

A resent renewal could land after the node gave its lease up, and a resent claim after the
lease moved on; scheduler/connections.py turns redis-py's retries off for that. A TCP proxy
between the client and a private redis-server black-holes the path (the client only learns
of it by its own timeout) and counts the connections the client opens: a retry cannot hide,
since redis-py drops a connection that timed out and retries on a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis

from scheduler.connections import Timeouts, redis_client
from scheduler.errors import StoreUnavailable
from scheduler.lease import Lease
from scheduler.records import FireClaim
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from tests.chaos.proxy import CutMode, TcpProxy
from tests.clocks import ManualClock
from tests.conftest import RedisServer

KEYS = Keys("test")
TIMEOUTS = Timeouts()  # what redis_client() uses by default, as node.py does
# Scheduling noise on top of one socket timeout; a single retry would add a whole timeout.
SLACK_S = 0.25
WAIT_S = 5.0


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", redis_server.port, name="redis-path") as path:
        yield path


@pytest.fixture
def leader(proxy: TcpProxy) -> Lease:
    """A lease taken through the proxy while the path is open: one pooled connection."""
    client = redis_client(f"redis://127.0.0.1:{proxy.port}/0")
    held = Lease(client, KEYS, "a", timedelta(seconds=5), ManualClock())
    assert held.try_acquire()
    assert proxy.stats.accepted == 1
    return held


def renew(lease: Lease) -> None:
    lease.renew()


def acquire(lease: Lease) -> None:
    lease.forget()  # as a standby would call it
    lease.try_acquire()


def claim(lease: Lease) -> None:
    """The claim a leader makes per burst, over the lease's kind of client."""
    assert lease.value is not None
    assert lease.token is not None
    Claims(lease.client, KEYS).claim(
        lease.value, lease.token, [FireClaim("job", 1_700_000_000, "q", b"m")]
    )


CALLS: dict[str, tuple[Callable[[Lease], None], type[Exception] | tuple[type[Exception], ...]]] = {
    "lease renew": (renew, StoreUnavailable),
    "lease acquire": (acquire, StoreUnavailable),
    "claim": (claim, StoreUnavailable),
}


def timed_failure(
    call: Callable[[Lease], None],
    lease: Lease,
    raises: type[Exception] | tuple[type[Exception], ...],
) -> float:
    started = time.monotonic()
    with pytest.raises(raises) as failure:
        call(lease)
    elapsed = time.monotonic() - started
    if isinstance(failure.value, StoreUnavailable):
        assert isinstance(failure.value.__cause__, redis.TimeoutError)
    return elapsed


@pytest.mark.parametrize(("call", "raises"), CALLS.values(), ids=list(CALLS))
def test_one_call_on_an_open_connection_is_sent_once(
    proxy: TcpProxy,
    leader: Lease,
    call: Callable[[Lease], None],
    raises: type[Exception] | tuple[type[Exception], ...],
) -> None:
    proxy.cut(CutMode.BLACKHOLE)
    elapsed = timed_failure(call, leader, raises)
    # Sent on the pooled connection; no second connection to send it again.
    assert (proxy.stats.accepted, proxy.stats.refused) == (1, 0)
    assert TIMEOUTS.read_s <= elapsed < TIMEOUTS.read_s + SLACK_S


@pytest.mark.parametrize(("call", "raises"), CALLS.values(), ids=list(CALLS))
def test_one_call_needing_a_new_connection_opens_exactly_one(
    proxy: TcpProxy,
    leader: Lease,
    call: Callable[[Lease], None],
    raises: type[Exception] | tuple[type[Exception], ...],
) -> None:
    leader.client.connection_pool.disconnect()
    deadline = time.monotonic() + WAIT_S
    while proxy.open_connections():
        assert time.monotonic() < deadline, "the proxy kept the closed connection"
        time.sleep(0.005)  # poll interval; the loop checks the proxy
    proxy.cut(CutMode.BLACKHOLE)
    elapsed = timed_failure(call, leader, raises)
    # One connection attempt during the cut (accepted, then never answered), and no other.
    assert (proxy.stats.accepted, proxy.stats.refused) == (1, 1)
    # The proxy accepts at once: what runs out is the read timeout of the connection's
    # handshake, once.
    assert TIMEOUTS.read_s <= elapsed < TIMEOUTS.read_s + SLACK_S


def test_the_path_works_again_after_the_cut(proxy: TcpProxy, leader: Lease) -> None:
    proxy.cut(CutMode.BLACKHOLE)
    with pytest.raises(StoreUnavailable):
        leader.renew()
    proxy.restore()
    # The timed-out connection was dropped, not reused: the next call opens a new one, and
    # the lease is still ours.
    assert leader.try_acquire()
    assert leader.renew()
    assert proxy.stats.accepted == 2
