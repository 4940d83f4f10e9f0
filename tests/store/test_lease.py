"""The lease scripts against a real redis-server: acquire, renew, release, fencing tokens,
and what the lease keeper does with whatever else it finds at the lease and fence keys."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis

from scheduler.connections import redis_client
from scheduler.errors import StoreUnavailable
from scheduler.lease import MAX_TOKEN, Lease, LeaseHolder, keep, read_holder
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
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"^taking the lease: .*Connection refused"):
        dead.try_acquire()
    with pytest.raises(StoreUnavailable, match=r"^reading the lease TTL: "):
        dead.wait_for_vacancy(1.0)
    dead.value = "1 x a"  # as if it had been taken before Redis went away
    with pytest.raises(StoreUnavailable, match=r"^renewing the lease: "):
        dead.renew()
    with pytest.raises(StoreUnavailable, match=r"^reading the lease: "):
        read_holder(dead.client, KEYS)
    assert time.monotonic() - started < 1.0  # refused at once: nothing waits or retries


# --- what the keeper finds at the lease and fence keys (issue 8) ------------------------------

SHORT_TTL_S = 0.3
# How long a test waits for a condition; generous for 2 shared cores, never a fixed sleep.
WAIT_S = 5.0
# How late after the garbage expires a standby may take over: its poll, plus scheduling.
TAKEOVER_SLACK_S = 0.25
POLL_S = 0.02


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> float:
    """Seconds until `condition()` held; fails the test after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(0.005)  # poll interval; the loop checks the condition
    return time.monotonic() - started


@contextmanager
def keeper(
    held: Lease, may_lead: Callable[[], bool] = lambda: True, poll_s: float = POLL_S
) -> Iterator[threading.Thread]:
    """`keep` running on its own thread, as node.py runs it; stopped and joined on exit."""
    stop, changed = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=keep, args=(held, stop, changed, may_lead, poll_s), name="lease", daemon=True
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "the keeper did not stop"


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "scheduler.lease" and record.levelno >= level
    ]


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def earlier_token(server: RedisServer, clock: ManualClock) -> int:
    """A token handed out and released before the test breaks anything."""
    held, token = acquired(server, "earlier", clock)
    assert held.release()
    return token


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="scheduler.lease")
    return caplog


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"5 abc node one", LeaseHolder(5, "abc", "node one", 7)),
        ("5 abc node", LeaseHolder(5, "abc", "node", 7)),
        (f"{MAX_TOKEN} abc node".encode(), LeaseHolder(MAX_TOKEN, "abc", "node", 7)),
        (b"5 abc n\xffde", LeaseHolder(5, "abc", "n\ufffdde", 7)),
        (f"{MAX_TOKEN + 1} abc node".encode(), None),
        (b"99999999999999999999 abc node", None),
        (b"1e300 abc node", None),
        (b"-5 abc node", None),
        (b"1.5 abc node", None),
        ("\u00b2 abc node", None),  # str.isdigit() says yes, int() says no
        (b"garbage", None),
        (b"", None),
        (b"5 abc", None),
        (b"5  node", None),
        (b"5 abc ", None),
        (b"5\tabc node", None),
        ("5 abc \ud800", LeaseHolder(5, "abc", "?", 7)),
        (b"\xff\xfe\x00", None),
    ],
)
def test_parse_never_raises(value: bytes | str, expected: LeaseHolder | None) -> None:
    assert LeaseHolder.parse(value, 7) == expected


def test_read_holder_never_raises_on_what_the_key_holds(redis_server: RedisServer) -> None:
    client = redis_server.client()
    assert read_holder(client, KEYS) is None
    client.set(KEYS.lease, "garbage")
    assert read_holder(client, KEYS) is None
    client.set(KEYS.lease, "5 deadbeef dead-node")
    assert read_holder(client, KEYS) == LeaseHolder(5, "deadbeef", "dead-node", -1)
    client.delete(KEYS.lease)
    client.rpush(KEYS.lease, "x")
    assert read_holder(client, KEYS) is None
    client.delete(KEYS.lease)
    client.hset(KEYS.lease, "x", "y")
    assert read_holder(client, KEYS) is None


def test_renew_and_release_of_a_wrong_typed_lease_key_say_not_ours(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    client = redis_server.client()
    a, _ = acquired(redis_server, "a", clock)
    value = a.value
    client.delete(KEYS.lease)
    client.rpush(KEYS.lease, "x")
    assert not a.renew()
    assert a.value is None
    a.value = value  # as if it had not noticed yet when asked to stop
    assert not a.release()
    assert client.lrange(KEYS.lease, 0, -1) == [b"x"]


UNREADABLE_FENCES = {
    "float overflow": ("1e300", "'1e300'"),
    "not a number": ("abc", "'abc'"),
    "negative": ("-5", "'-5'"),
    "fraction": ("1.5", "'1.5'"),
    "beyond 2^53": ("99999999999999999999", "'99999999999999999999'"),
    "just above 2^53": ("9007199254740993", "'9007199254740993'"),
    "leading zeros": ("0005", "'0005'"),
    "empty": ("", "''"),
}


@pytest.mark.parametrize(
    ("fence", "found"), UNREADABLE_FENCES.values(), ids=list(UNREADABLE_FENCES)
)
def test_an_unreadable_fence_is_rewritten_above_every_token(
    redis_server: RedisServer,
    clock: ManualClock,
    logs: pytest.LogCaptureFixture,
    fence: str,
    found: str,
) -> None:
    client = redis_server.client()
    before = earlier_token(redis_server, clock)
    client.set(KEYS.fence, fence)
    logs.clear()
    sent_ms = redis_ms(client)
    b = lease(redis_server, "b", clock)
    assert b.try_acquire()
    assert b.token is not None
    assert b.token > before
    # Unknowable history: one above Redis TIME, as a token of this very millisecond may exist.
    assert sent_ms < b.token <= redis_ms(client) + 1
    assert client.get(KEYS.fence) == str(b.token).encode()
    assert lines(logs) == [
        f"fence key test:fence held {found}, not a fencing token; "
        f"rewrote it as {b.token}, the new token",
        f"leader now: node b, fencing token {b.token}",
    ]


def test_a_wrong_typed_fence_is_replaced_by_the_new_token(
    redis_server: RedisServer, clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    before = earlier_token(redis_server, clock)
    client.delete(KEYS.fence)
    client.hset(KEYS.fence, "token", before)
    logs.clear()
    b = lease(redis_server, "b", clock)
    assert b.try_acquire()
    assert b.token is not None
    assert b.token > before
    assert client.get(KEYS.fence) == str(b.token).encode()
    assert lines(logs, logging.WARNING) == [
        f"fence key test:fence held a hash, not a fencing token; "
        f"rewrote it as {b.token}, the new token"
    ]


def test_what_still_reads_as_a_token_in_a_bad_fence_stays_a_floor(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    client = redis_server.client()
    ahead = 5_000_000_000_000  # far beyond Redis TIME in ms, as after a clock step back
    client.set(KEYS.fence, f"{ahead}.5")
    _, token = acquired(redis_server, "a", clock)
    assert token == ahead + 1
    assert client.get(KEYS.fence) == str(ahead + 1).encode()


def test_a_repaired_fence_stays_above_the_tokens_this_process_saw(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    client = redis_server.client()
    client.set(KEYS.fence, "5000000000000")  # readable, and ahead of Redis TIME
    a, first = acquired(redis_server, "a", clock)
    b = lease(redis_server, "b", clock)
    assert not b.try_acquire()  # b sees a's token here
    assert a.release()
    client.set(KEYS.fence, "abc")
    assert b.try_acquire()
    assert b.token == first + 1
    assert b.release()
    client.set(KEYS.fence, "abc")
    c = lease(redis_server, "c", clock)  # saw nothing: Redis TIME is all it has
    assert c.try_acquire()
    assert c.token is not None
    assert c.token < first
    assert c.release()
    client.set(KEYS.fence, "abc")
    assert b.try_acquire()  # b's own last token is a floor too
    assert b.token == first + 2


def test_the_keeper_leads_despite_a_garbage_fence(
    redis_server: RedisServer, clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    before = earlier_token(redis_server, clock)
    client.set(KEYS.fence, "1e300")
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    with keeper(b) as thread:
        wait_until(b.held)
        assert thread.is_alive()
    assert b.token is not None
    assert b.token > before
    assert client.get(KEYS.fence) == str(b.token).encode()
    assert lines(logs, logging.WARNING) == [
        f"fence key test:fence held '1e300', not a fencing token; "
        f"rewrote it as {b.token}, the new token"
    ]


def set_garbage(client: redis.Redis, kind: str) -> None:
    if kind == "list":
        client.rpush(KEYS.lease, "x")
    elif kind == "hash":
        client.hset(KEYS.lease, "x", "y")
    elif kind == "dead node":
        client.set(KEYS.lease, "5 deadbeef dead-node")
    elif kind == "a day's TTL":
        client.set(KEYS.lease, "garbage", px=86_400_000)
    elif kind == "short TTL":
        client.set(KEYS.lease, "garbage", px=200)
    else:
        client.set(KEYS.lease, kind)


TAKEN_AFTER_300_MS = "set it to expire in 300 ms, then the lease is taken as usual"
GARBAGE_LEASES = {
    "garbage": "'garbage', not a lease value, with no TTL; " + TAKEN_AFTER_300_MS,
    "dead node": "the lease value '5 deadbeef dead-node' with no TTL; " + TAKEN_AFTER_300_MS,
    "list": "a list, not a lease value, with no TTL; " + TAKEN_AFTER_300_MS,
    "hash": "a hash, not a lease value, with no TTL; " + TAKEN_AFTER_300_MS,
    "a day's TTL": "'garbage', not a lease value, with a TTL of more than 300 ms; "
    + TAKEN_AFTER_300_MS,
    "short TTL": "'garbage', not a lease value, expiring within 300 ms; "
    "the lease is taken as usual once it expires",
}


def dump(client: redis.Redis) -> Any:
    kind = client.type(KEYS.lease)
    if kind == b"list":
        return kind, client.lrange(KEYS.lease, 0, -1)
    if kind == b"hash":
        return kind, client.hgetall(KEYS.lease)
    return kind, client.get(KEYS.lease)


@pytest.mark.parametrize(("garbage", "found"), GARBAGE_LEASES.items(), ids=list(GARBAGE_LEASES))
def test_garbage_at_the_lease_key_expires_within_one_ttl_then_a_node_leads(
    redis_server: RedisServer,
    clock: ManualClock,
    logs: pytest.LogCaptureFixture,
    garbage: str,
    found: str,
) -> None:
    client = redis_server.client()
    before = earlier_token(redis_server, clock)
    logs.clear()
    started = time.monotonic()
    set_garbage(client, garbage)
    as_set = dump(client)
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    assert not b.try_acquire()
    assert dump(client) == as_set  # left in place: only given a TTL
    assert 0 < client.pttl(KEYS.lease) <= SHORT_TTL_S * 1000
    with keeper(b) as thread:
        wait_until(b.held)
        elapsed = time.monotonic() - started
        assert thread.is_alive()
    expires_s = 0.2 if garbage == "short TTL" else SHORT_TTL_S
    assert expires_s <= elapsed < expires_s + TAKEOVER_SLACK_S
    holder = read_holder(client, KEYS)
    assert holder is not None
    assert (holder.node_id, holder.token) == ("b", b.token)
    assert b.token is not None
    assert b.token > max(before, 5)
    assert client.get(KEYS.fence) == str(b.token).encode()
    # Logged once, although the keeper found it again on every poll until it expired.
    assert lines(logs, logging.WARNING) == [f"lease key test:lease holds {found}"]


def test_garbage_given_its_ttl_again_is_logged_again(
    redis_server: RedisServer, clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    client.set(KEYS.lease, "garbage")
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    assert not b.try_acquire()
    assert not b.try_acquire()  # same finding, now with a TTL: no news
    client.persist(KEYS.lease)
    assert not b.try_acquire()
    expected = "lease key test:lease holds 'garbage', not a lease value, with no TTL; "
    assert lines(logs, logging.WARNING) == [expected + TAKEN_AFTER_300_MS] * 2


class Script:
    """Stands in for a registered script: a canned reply while `broken` is set."""

    def __init__(self, real: Callable[..., Any], reply: Callable[[], Any]) -> None:
        self.real, self.reply = real, reply
        self.broken = threading.Event()
        self.broken.set()
        self.calls = 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.reply() if self.broken.is_set() else self.real(**kwargs)


def test_the_keeper_survives_a_malformed_acquire_reply_and_logs_it_once(
    redis_server: RedisServer,
    clock: ManualClock,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    # What the old acquire.lua made of a fence of 1e300: string.format('%d', 1e300 + 1).
    value = f"-9223372036854775808 {b.nonce} b".encode()
    script = Script(b._acquire, lambda: [1, value, b"", b""])
    monkeypatch.setattr(b, "_acquire", script)
    with keeper(b) as thread:
        wait_until(lambda: script.calls >= 10)
        assert thread.is_alive()
        assert not b.held()
        script.broken.clear()  # the fence is fixed
        wait_until(b.held)
    assert lines(logs, logging.ERROR) == [
        f"lease: Redis state corrupt: acquire.lua replied {value!r}, not a lease of ours"
    ]
    assert not [record for record in logs.records if record.exc_info]


class Countdown:
    """A `may_lead` that runs a step on each call: the test drives the keeper's iterations."""

    def __init__(self, steps: dict[int, Callable[[], bool]], otherwise: Callable[[], bool]):
        self.steps, self.otherwise = steps, otherwise
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.steps.get(self.calls, self.otherwise)()


def test_an_unexpected_error_is_logged_with_its_traceback_once_a_while(
    redis_server: RedisServer, clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    stop, changed = threading.Event(), threading.Event()

    def fail() -> bool:
        raise RuntimeError("bug in may_lead")

    def later() -> bool:
        clock.advance(61)  # past REPEAT_LOG_S: the next failure is logged again
        return fail()

    def last() -> bool:
        stop.set()  # one renewal as leader, then the loop ends
        return True

    may_lead = Countdown({6: later, 11: lambda: True, 12: last}, fail)
    keep(b, stop, changed, may_lead, standby_poll_s=0.001)  # on this thread: no race
    assert may_lead.calls == 12
    assert b.held()
    assert changed.is_set()
    errors = [record for record in logs.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [
        "lease keeper: unexpected RuntimeError, carrying on",
        "lease keeper: unexpected RuntimeError, carrying on"
        " (4 more like it not logged in the last 61 s)",
    ]
    assert all(record.exc_info and record.exc_info[0] is RuntimeError for record in errors)


def test_an_unreachable_redis_is_logged_once_a_while(
    clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    dead = Lease(redis_client(url), KEYS, "a", timedelta(seconds=SHORT_TTL_S), clock)
    stop, changed = threading.Event(), threading.Event()

    def later() -> bool:
        clock.advance(61)
        return True

    def last() -> bool:
        stop.set()
        return False

    may_lead = Countdown({4: later, 9: last}, lambda: True)
    keep(dead, stop, changed, may_lead, standby_poll_s=0.001)
    warned = lines(logs, logging.WARNING)
    assert len(warned) == 2
    assert warned[0].startswith("lease: Redis unavailable: taking the lease: Error 111 ")
    assert warned[1].endswith(" (2 more like it not logged in the last 61 s)")
    assert not changed.is_set()


def test_a_wrong_typed_handover_key_is_logged_as_corrupt_and_the_keeper_goes_on(
    redis_server: RedisServer, clock: ManualClock, logs: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    client.set(KEYS.handover, "not a list")
    started = time.monotonic()
    a = lease(redis_server, "a", clock, ttl_s=SHORT_TTL_S)
    assert a.try_acquire()  # and is never renewed: it expires after SHORT_TTL_S
    b = lease(redis_server, "b", clock, ttl_s=SHORT_TTL_S)
    with keeper(b) as thread:
        wait_until(b.held)
        elapsed = time.monotonic() - started
        assert thread.is_alive()
    assert SHORT_TTL_S <= elapsed < SHORT_TTL_S + TAKEOVER_SLACK_S
    assert lines(logs, logging.ERROR) == [
        "lease: Redis state corrupt: waiting for a lease handover: "
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    ]
