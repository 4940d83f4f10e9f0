"""Claims against a real redis-server: fencing, idempotence, missed ranges, pausing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.connections import redis_client
from scheduler.errors import LeaseLost
from scheduler.lease import Lease
from scheduler.records import AdoptFlag, ClaimStatus, FireClaim, MissedRange
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from tests.clocks import ManualClock
from tests.conftest import RedisServer

KEYS = Keys("test")
# In the past: a claim refuses slots later than Redis TIME plus the allowed clock offset.
T0 = 1_700_000_000


@pytest.fixture
def store(redis_server: RedisServer) -> StateStore:
    return StateStore(redis_client(redis_server.url), KEYS)


@pytest.fixture
def claims(store: StateStore) -> Claims:
    return Claims(store.client, KEYS)


@pytest.fixture
def leader(redis_server: RedisServer) -> Lease:
    held = Lease(redis_client(redis_server.url), KEYS, "a", timedelta(seconds=5), ManualClock())
    assert held.try_acquire()
    return held


def claim(claims: Claims, lease: Lease, fires: list[FireClaim], missed=()) -> list[ClaimStatus]:  # type: ignore[no-untyped-def]
    assert lease.value is not None
    assert lease.token is not None
    return claims.claim(lease.value, lease.token, fires, missed).statuses


def test_adopt_starts_new_jobs_now_and_keeps_existing(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    assert leader.value is not None
    store.client.hset(KEYS.watermarks, "old", T0 - 100)
    store.client.hset(KEYS.watermarks, "garbled", "yesterday")
    adopted = claims.adopt(leader.value, T0, ["old", "new", "garbled"])
    assert adopted == {
        "old": (T0 - 100, AdoptFlag.EXISTING),
        "new": (T0, AdoptFlag.STARTED_NOW),
        "garbled": (T0, AdoptFlag.RESET_UNREADABLE),
    }


def test_claim_enqueues_once_and_a_resend_is_already_ours(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    fires = [FireClaim("a", T0, "celery", b"m1"), FireClaim("b", T0, "celery", b"m2")]
    assert claim(claims, leader, fires) == [ClaimStatus.CLAIMED, ClaimStatus.CLAIMED]
    assert claim(claims, leader, fires) == [ClaimStatus.ALREADY_OURS, ClaimStatus.ALREADY_OURS]
    assert store.client.lrange("celery", 0, -1) == [b"m2", b"m1"]
    assert store.watermarks() == {"a": T0, "b": T0}
    assert store.last_fires() == {"a": T0, "b": T0}
    assert store.client.xlen(KEYS.history) == 2


def test_older_slot_than_watermark_is_refused(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    claim(claims, leader, [FireClaim("a", T0 + 10)])
    assert claim(claims, leader, [FireClaim("a", T0 + 5)]) == [ClaimStatus.TAKEN_BY_OTHER]


def test_a_node_that_lost_the_lease_writes_nothing(
    redis_server: RedisServer, store: StateStore, claims: Claims, leader: Lease
) -> None:
    stale_value, stale_token = leader.value, leader.token
    assert leader.release()
    successor = Lease(
        redis_client(redis_server.url), KEYS, "b", timedelta(seconds=5), ManualClock()
    )
    assert successor.try_acquire()
    assert stale_value is not None
    assert stale_token is not None
    with pytest.raises(LeaseLost):
        claims.claim(stale_value, stale_token, [FireClaim("a", T0, "celery", b"zombie")])
    assert store.client.llen("celery") == 0
    assert store.watermarks() == {}


def test_missed_ranges_are_recorded_once_and_advance_the_watermark(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    gap = MissedRange("a", T0 + 1, T0 + 86_000, 86_000, "misfire_grace")
    claim(claims, leader, [FireClaim("a", T0 + 86_001)], [gap])
    claim(claims, leader, [], [gap])  # resent: no second record
    assert store.watermarks() == {"a": T0 + 86_001}
    assert store.missed() == [
        {
            "job": "a",
            "first": str(T0 + 1),
            "last": str(T0 + 86_000),
            "count": "86000",
            "reason": "misfire_grace",
            "token": str(leader.token),
        }
    ]


def test_paused_job_advances_without_enqueueing(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    store.set_paused("a", True)
    assert claim(claims, leader, [FireClaim("a", T0, "celery", b"m")]) == [ClaimStatus.PAUSED]
    assert store.client.llen("celery") == 0
    store.set_paused("a", False)
    assert claim(claims, leader, [FireClaim("a", T0 + 1, "celery", b"m")]) == [ClaimStatus.CLAIMED]
    assert store.paused() == set()


def test_large_batches_are_claimed_in_chunks(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    fires = [FireClaim(f"job{i}", T0, "q", b"x") for i in range(2500)]
    assert claim(claims, leader, fires) == [ClaimStatus.CLAIMED] * 2500
    assert store.client.llen("q") == 2500


def test_outbox_claims_append_in_order_and_refuse_when_full(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    assert leader.value is not None
    assert leader.token is not None
    fires = [FireClaim("a", T0, "", b"a0"), FireClaim("b", T0, "", b"b0"), FireClaim("a", T0 + 1)]
    statuses = claims.claim(leader.value, leader.token, fires, outbox_cap=2).statuses
    assert statuses == [ClaimStatus.CLAIMED, ClaimStatus.CLAIMED, ClaimStatus.OUTBOX_FULL]
    # The outbox holds the messages themselves, in claim order.
    assert claims.outbox_head(10) == [b"a0", b"b0"]
    # A refused slot is not claimed: its watermark stays where it was.
    assert store.watermarks() == {"a": T0, "b": T0}
    # A resent claim is "already ours" and adds nothing to the outbox.
    assert claims.claim(leader.value, leader.token, fires[:1], outbox_cap=2).statuses == [
        ClaimStatus.ALREADY_OURS
    ]
    assert store.outbox_size() == 2


def test_outbox_ack_removes_only_the_matching_head_under_the_lease(
    redis_server: RedisServer, store: StateStore, claims: Claims, leader: Lease
) -> None:
    assert leader.value is not None
    assert leader.token is not None
    claims.claim(
        leader.value,
        leader.token,
        [FireClaim("a", T0, "", b"first"), FireClaim("a", T0 + 1, "", b"second")],
        outbox_cap=10,
    )
    first, second = claims.outbox_head(10)
    assert claims.outbox_ack(leader.value, [second]) == 0  # not the head: nothing removed
    assert claims.outbox_ack(leader.value, [first]) == 1
    assert claims.outbox_ack(leader.value, [first]) == 0  # a resent ack removes nothing else
    stale = leader.value
    assert leader.release()
    with pytest.raises(LeaseLost):
        claims.outbox_ack(stale, [second])
    assert claims.outbox_head(10) == [second]


def test_a_missed_range_and_fires_of_one_job_in_one_call(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    gap = MissedRange("a", T0 + 1, T0 + 10, 10, "misfire_grace")
    fires = [FireClaim("a", T0 + 5, "q", b"too old"), FireClaim("a", T0 + 11, "q", b"new")]
    assert claim(claims, leader, fires, [gap]) == [ClaimStatus.TAKEN_BY_OTHER, ClaimStatus.CLAIMED]
    assert store.client.lrange("q", 0, -1) == [b"new"]
    assert store.watermarks() == {"a": T0 + 11}


def test_many_fires_of_many_queues_keep_their_order(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    fires = [FireClaim(f"j{i}", T0, f"q{i % 3}", b"%d" % i) for i in range(3000)]
    assert claim(claims, leader, fires) == [ClaimStatus.CLAIMED] * 3000
    for queue in range(3):
        # LPUSH puts the newest at the head: the list read backwards is the order of the fires.
        expected = [b"%d" % i for i in range(3000) if i % 3 == queue]
        assert store.client.lrange(f"q{queue}", 0, -1)[::-1] == expected
    assert len(store.watermarks()) == 3000
    assert store.last_fires()["j2999"] == T0


def test_an_outbox_full_gap_stays_one_record_however_long(
    store: StateStore, claims: Claims, leader: Lease
) -> None:
    for second in range(1, 6):  # five ticks, one refused slot each
        claim(claims, leader, [], [MissedRange("a", T0 + second, T0 + second, 1, "outbox_full")])
    assert store.recorded_missed() == []
    assert store.open_gaps() == [
        {"job": "a", "first": str(T0 + 1), "last": str(T0 + 5), "count": "5",
         "reason": "outbox_full", "open": "yes"}
    ]  # fmt: skip
    assert claim(claims, leader, [FireClaim("a", T0 + 6)]) == [ClaimStatus.CLAIMED]
    assert store.open_gaps() == []
    [record] = store.recorded_missed()
    assert (record["first"], record["last"], record["count"]) == (str(T0 + 1), str(T0 + 5), "5")
