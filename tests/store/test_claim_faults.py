"""The claim and adopt scripts against wrong values in Redis, a clock ahead, a vacant lease.

Each case writes the wrong value a fault injection found, then asserts exactly what the script
wrote (nothing, for the refused part) and what it answered.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from scheduler.connections import redis_client
from scheduler.errors import ClockSkew, LeaseLost, StateCorrupt
from scheduler.lease import Lease
from scheduler.records import AdoptFlag, ClaimStatus, Corruption, FireClaim, MissedRange
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from tests.clocks import ManualClock
from tests.conftest import RedisServer

KEYS = Keys("test")
T0 = 1_700_000_000  # in the past, as every claimable slot is


@pytest.fixture
def store(redis_server: RedisServer) -> StateStore:
    return StateStore(redis_client(redis_server.url), KEYS)


@pytest.fixture
def claims(store: StateStore) -> Claims:
    return Claims(store.client, KEYS, max_ahead_s=1)


@pytest.fixture
def lease(redis_server: RedisServer) -> Lease:
    held = Lease(redis_client(redis_server.url), KEYS, "a", timedelta(seconds=5), ManualClock())
    assert held.try_acquire()
    return held


def _claim(claims: Claims, lease: Lease, fires: list[FireClaim], missed=(), outbox_cap=0):  # type: ignore[no-untyped-def]
    assert lease.value is not None
    assert lease.token is not None
    return claims.claim(lease.value, lease.token, fires, missed, outbox_cap)


def _snapshot(store: StateStore, *extra: str) -> dict[str, object]:
    """Everything the claim script may write, as Redis holds it."""
    client = store.client
    keys = [KEYS.watermarks, KEYS.last_fire, KEYS.history, KEYS.missed, KEYS.outbox,
            KEYS.missed_open, KEYS.paused_skips, *extra]  # fmt: skip
    return {key: client.dump(key) for key in keys}


SHARED_KEYS = [
    ("paused", KEYS.paused),
    ("watermarks", KEYS.watermarks),
    ("last_fire", KEYS.last_fire),
    ("history", KEYS.history),
    ("missed", KEYS.missed),
    ("missed_open", KEYS.missed_open),
    ("outbox", KEYS.outbox),
    ("paused_skips", KEYS.paused_skips),
]


@pytest.mark.parametrize(("name", "key"), SHARED_KEYS)
@pytest.mark.parametrize("outbox_cap", [0, 100])
def test_a_wrong_type_at_a_shared_key_writes_nothing_and_names_the_key(
    store: StateStore, claims: Claims, lease: Lease, name: str, key: str, outbox_cap: int
) -> None:
    store.client.set(key, "x")
    before = _snapshot(store, "celery")
    fires = [FireClaim("a", T0, "celery" if not outbox_cap else "", b"m")]
    with pytest.raises(StateCorrupt) as raised:
        _claim(claims, lease, fires, [MissedRange("b", T0 - 9, T0 - 5, 5, "misfire_grace")],
               outbox_cap)  # fmt: skip
    assert (raised.value.key, raised.value.found) == (key, "string")
    assert str(raised.value) == f"claim: key {key} holds a string"
    assert _snapshot(store, "celery") == before  # all or nothing: not one write


def test_a_queue_key_of_the_wrong_type_corrupts_its_job_only(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    """Case 2: a string at the job's queue key. Before, the watermark, last_fire and history
    advanced, the LPUSH failed, and the resend answered "already ours": the slot was lost."""
    store.client.set("broken-queue", "not a list")
    fires = [FireClaim("a", T0, "broken-queue", b"ma"), FireClaim("b", T0, "celery", b"mb")]
    reply = _claim(claims, lease, fires)
    assert reply.statuses == [ClaimStatus.CORRUPT, ClaimStatus.CLAIMED]
    assert reply.corrupt == [Corruption("broken-queue", "a string, not a queue list", "a")]
    assert store.watermarks() == {"b": T0}
    assert store.last_fires() == {"b": T0}
    assert [fields[b"job"] for _, fields in store.client.xrange(KEYS.history)] == [b"b"]
    assert store.client.lrange("celery", 0, -1) == [b"mb"]
    assert store.client.get("broken-queue") == b"not a list"
    # Resent after the queue is fixed: claimed now, never "already ours".
    store.client.delete("broken-queue")
    assert _claim(claims, lease, fires[:1]).statuses == [ClaimStatus.CLAIMED]
    assert store.client.lrange("broken-queue", 0, -1) == [b"ma"]


@pytest.mark.parametrize("garbage", ["yesterday", "1e300", "inf", "-5", "1.5", "999999999999"])
def test_an_unreadable_watermark_corrupts_its_job_in_a_claim(
    store: StateStore, claims: Claims, lease: Lease, garbage: str
) -> None:
    store.client.hset(KEYS.watermarks, "a", garbage)
    reply = _claim(claims, lease, [FireClaim("a", T0, "q", b"m"), FireClaim("b", T0, "q", b"n")])
    assert reply.statuses == [ClaimStatus.CORRUPT, ClaimStatus.CLAIMED]
    assert reply.corrupt == [Corruption(KEYS.watermarks, f"watermark {garbage}", "a")]
    assert store.client.hget(KEYS.watermarks, "a") == garbage.encode()


def test_an_unparsable_open_gap_corrupts_its_job(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    store.client.hset(KEYS.missed_open, "a", "garbage")
    store.client.hset(KEYS.missed_open, "b", f"{T0 - 3} {T0 - 1} 3 outbox_full")
    reply = _claim(claims, lease, [FireClaim("a", T0, "q", b"m"), FireClaim("b", T0, "q", b"n")])
    assert reply.statuses == [ClaimStatus.CORRUPT, ClaimStatus.CLAIMED]
    assert reply.corrupt == [Corruption(KEYS.missed_open, "open gap garbage", "a")]
    # b's readable gap was closed into one record when b fired.
    [(_, record)] = store.client.xrange(KEYS.missed)
    assert (record[b"job"], record[b"count"]) == (b"b", b"3")
    assert store.client.hgetall(KEYS.missed_open) == {b"a": b"garbage"}


def test_slots_later_than_redis_time_are_refused_and_nothing_of_them_written(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    """Case 5: time is part of the fence."""
    future = int(time.time()) + 3600
    fires = [FireClaim("a", T0, "q", b"now"), FireClaim("b", future, "q", b"an hour early")]
    gap = MissedRange("c", T0, future, 100, "misfire_grace")
    reply = _claim(claims, lease, fires, [gap])
    assert reply.statuses == [ClaimStatus.CLAIMED, ClaimStatus.FUTURE]
    assert store.watermarks() == {"a": T0}
    assert store.client.lrange("q", 0, -1) == [b"now"]
    assert store.recorded_missed() == []


def test_adopt_restarts_unreadable_and_out_of_range_watermarks_from_now(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    """Case 3: before, 999999999999 crashed every node that took the lease (year out of range)."""
    now_s = int(time.time())
    garbage = {"huge": "999999999999", "float": "1e300", "inf": "inf", "neg": "-5", "text": "x"}
    for job, value in garbage.items():
        store.client.hset(KEYS.watermarks, job, value)
    store.client.hset(KEYS.watermarks, "fine", T0)
    assert lease.value is not None
    adopted = claims.adopt(lease.value, now_s, [*garbage, "fine", "new"])
    assert adopted == {
        "huge": (now_s, AdoptFlag.RESET_OUT_OF_RANGE),
        "float": (now_s, AdoptFlag.RESET_UNREADABLE),
        "inf": (now_s, AdoptFlag.RESET_UNREADABLE),
        "neg": (now_s, AdoptFlag.RESET_UNREADABLE),
        "text": (now_s, AdoptFlag.RESET_UNREADABLE),
        "fine": (T0, AdoptFlag.EXISTING),
        "new": (now_s, AdoptFlag.STARTED_NOW),
    }
    recorded = {entry["job"]: entry for entry in store.recorded_missed()}
    assert set(recorded) == set(garbage)  # a new job's start is not a loss; resets are
    assert recorded["huge"]["reason"] == "watermark_out_of_range"
    assert recorded["huge"]["found"] == "999999999999"
    assert recorded["text"]["reason"] == "watermark_unreadable"
    assert recorded["text"]["count"] == "0"


def test_adopt_refuses_a_now_later_than_redis_time(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    assert lease.value is not None
    with pytest.raises(ClockSkew):
        claims.adopt(lease.value, int(time.time()) + 3600, ["a"])
    assert store.watermarks() == {}  # no watermark an hour ahead


def test_set_aside_moves_a_wrong_key_under_the_lease_only(
    store: StateStore, claims: Claims, lease: Lease
) -> None:
    assert lease.value is not None
    store.client.set(KEYS.paused, "x")
    assert claims.set_aside(lease.value, KEYS.paused, "hash") is None  # not what was found
    target = claims.set_aside(lease.value, KEYS.paused, "string")
    assert target is not None
    assert target.startswith(f"{KEYS.paused}:corrupt:")
    assert store.client.get(target) == b"x"
    assert not store.client.exists(KEYS.paused)
    store.client.set(KEYS.paused, "y")
    stale = lease.value
    assert lease.release()
    with pytest.raises(LeaseLost):
        claims.set_aside(stale, KEYS.paused, "string")
    assert store.client.get(KEYS.paused) == b"y"


def test_claim_adopt_and_outbox_ack_against_an_expired_vacant_lease_are_refused(
    redis_server: RedisServer, store: StateStore, claims: Claims
) -> None:
    short = Lease(
        redis_client(redis_server.url), KEYS, "a", timedelta(milliseconds=300), ManualClock()
    )
    assert short.try_acquire()
    value, token = short.value, short.token
    assert value is not None
    assert token is not None
    assert _claim(claims, short, [FireClaim("a", T0, "", b"first")], outbox_cap=10).statuses == [
        ClaimStatus.CLAIMED
    ]
    deadline = time.monotonic() + 5
    while store.client.exists(KEYS.lease) and time.monotonic() < deadline:
        time.sleep(0.02)  # poll: the lease expires on Redis's clock, there is no event to await
    assert not store.client.exists(KEYS.lease), "the lease did not expire"
    before = _snapshot(store, "q")
    with pytest.raises(LeaseLost):
        claims.claim(value, token, [FireClaim("a", T0 + 1, "q", b"late")])
    with pytest.raises(LeaseLost):
        claims.adopt(value, T0, ["a", "b"])
    with pytest.raises(LeaseLost):
        claims.outbox_ack(value, [b"first"])
    assert _snapshot(store, "q") == before
