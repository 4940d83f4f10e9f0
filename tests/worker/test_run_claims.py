"""The run-once claim scripts against a real redis-server: what runs, what is a repeat, whose
claim a renewal may extend, and which of the package's errors a broken Redis raises."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.runonce import DEFAULT_DONE_TTL
from scheduler.connections import redis_client
from scheduler.errors import StateCorrupt, StoreUnavailable
from scheduler.store.keys import Keys
from scheduler.store.runs import (
    DONE,
    RETRYING,
    STARTED,
    ClaimReply,
    ClaimStatus,
    FinishStatus,
    RenewStatus,
    RunClaims,
)
from tests.conftest import RedisServer, free_port
from tests.integration.harness import wait_until

KEYS = Keys("test-runs")
TASK = "6f1c2d4e-0000-5000-8000-000000000001"
JOB, SLOT = "cleanup", "2026-11-25T21:00:00Z"
HOUR = timedelta(hours=1)


@pytest.fixture
def claims(redis_server: RedisServer) -> RunClaims:
    return RunClaims(redis_client(redis_server.url), KEYS)


def claim(
    claims: RunClaims,
    nonce: str,
    retries: int = 0,
    *,
    worker: str = "w1@host",
    ttl: timedelta = HOUR,
) -> ClaimReply:
    return claims.claim(
        task_id=TASK,
        job=JOB,
        slot=SLOT,
        retries=retries,
        nonce=nonce,
        worker=worker,
        started_ttl=ttl,
    )


def finish(claims: RunClaims, nonce: str, state: str = DONE, retries: int = 0) -> FinishStatus:
    return claims.finish(
        task_id=TASK, nonce=nonce, state=state, ttl=DEFAULT_DONE_TTL, retries=retries, worker="w"
    )


def executions(claims: RunClaims) -> list[tuple[str, int]]:
    return [(e.worker, e.retries) for e in claims.executions() if e.task_id == TASK]


def test_first_delivery_claims_and_logs_one_execution(claims: RunClaims) -> None:
    assert claim(claims, "a") == ClaimReply(ClaimStatus.CLAIMED)
    state, retries, since_ms, nonce, worker = (claims.read(TASK) or "").split(" ", 4)
    assert (state, retries, nonce, worker) == (STARTED, "0", "a", "w1@host")
    assert since_ms.isdigit()
    assert 0 < claims.client.pttl(KEYS.run_claim(TASK)) <= HOUR.total_seconds() * 1000
    [execution] = claims.executions()
    assert (execution.job, execution.slot, execution.task_id) == (JOB, SLOT, TASK)
    assert (execution.worker, execution.retries) == ("w1@host", 0)


def test_a_resent_claim_is_already_ours_and_writes_nothing(claims: RunClaims) -> None:
    claim(claims, "a")
    assert claim(claims, "a").status is ClaimStatus.ALREADY_OURS
    assert executions(claims) == [("w1@host", 0)]


def test_a_repeat_while_running_names_the_running_attempt(claims: RunClaims) -> None:
    claim(claims, "a")
    reply = claim(claims, "b", worker="w2@host")
    assert reply.status is ClaimStatus.REPEAT
    assert not reply.may_run
    assert reply.held is not None
    assert (reply.held.state, reply.held.retries, reply.held.worker) == (STARTED, 0, "w1@host")
    assert 0 < reply.held.ttl_ms <= HOUR.total_seconds() * 1000
    assert executions(claims) == [("w1@host", 0)]


def test_a_repeat_after_the_run_is_skipped_for_at_least_seven_days(claims: RunClaims) -> None:
    claim(claims, "a")
    assert finish(claims, "a") is FinishStatus.UPDATED
    assert timedelta(days=7) <= DEFAULT_DONE_TTL
    ttl_ms = claims.client.pttl(KEYS.run_claim(TASK))
    assert ttl_ms > (DEFAULT_DONE_TTL - timedelta(minutes=1)).total_seconds() * 1000
    reply = claim(claims, "b", worker="w2@host")
    assert reply.status is ClaimStatus.REPEAT
    assert reply.held is not None
    assert reply.held.state == DONE
    assert executions(claims) == [("w1@host", 0)]


def test_retry_with_a_higher_count_runs_and_lower_or_equal_ones_are_repeats(
    claims: RunClaims,
) -> None:
    claim(claims, "a", retries=0)
    assert finish(claims, "a", RETRYING, retries=0) is FinishStatus.UPDATED
    assert claim(claims, "b", retries=1).status is ClaimStatus.CLAIMED
    assert (claims.read(TASK) or "").startswith(f"{STARTED} 1 ")
    assert claim(claims, "c", retries=1).status is ClaimStatus.REPEAT
    assert claim(claims, "d", retries=0).status is ClaimStatus.REPEAT
    assert finish(claims, "b", DONE, retries=1) is FinishStatus.UPDATED
    assert claim(claims, "e", retries=1).status is ClaimStatus.REPEAT
    assert executions(claims) == [("w1@host", 0), ("w1@host", 1)]


def test_a_retry_that_overtakes_its_attempt_keeps_the_claim(claims: RunClaims) -> None:
    # The retry message can start on another worker before the first attempt has finished.
    claim(claims, "a", retries=0)
    assert claim(claims, "b", retries=1).status is ClaimStatus.CLAIMED
    assert finish(claims, "a", RETRYING, retries=0) is FinishStatus.SUPERSEDED
    assert (claims.read(TASK) or "").startswith(f"{STARTED} 1 ")


def test_an_expired_started_claim_lets_a_redelivery_run(claims: RunClaims) -> None:
    # The worker that claimed died: nothing finishes its claim, which expires on its own.
    claim(claims, "a", ttl=timedelta(milliseconds=200))
    wait_until(
        lambda: claims.read(TASK) is None,
        timeout_s=5,
        what="the started claim to expire",
        interval_s=0.05,
    )
    assert claim(claims, "b", worker="w2@host").status is ClaimStatus.CLAIMED
    assert executions(claims) == [("w1@host", 0), ("w2@host", 0)]
    # The first attempt turns out to be alive after all: it must not touch the new claim.
    assert finish(claims, "a") is FinishStatus.TAKEN_OVER
    assert (claims.read(TASK) or "").startswith(f"{STARTED} 0 ")


def test_finishing_after_the_claim_expired_still_records_the_run(claims: RunClaims) -> None:
    claim(claims, "a", ttl=timedelta(milliseconds=200))
    wait_until(
        lambda: claims.read(TASK) is None,
        timeout_s=5,
        what="the started claim to expire",
        interval_s=0.05,
    )
    assert finish(claims, "a") is FinishStatus.EXPIRED
    assert claim(claims, "b").status is ClaimStatus.REPEAT


def test_only_the_holder_releases_a_claim(claims: RunClaims) -> None:
    claim(claims, "a")
    assert not claims.release(task_id=TASK, nonce="b")
    assert claims.read(TASK) is not None
    assert claims.release(task_id=TASK, nonce="a")
    assert claims.read(TASK) is None


def test_a_value_we_did_not_write_is_claimed_over(claims: RunClaims) -> None:
    claims.client.set(KEYS.run_claim(TASK), "garbage")
    assert claim(claims, "a").status is ClaimStatus.CLAIMED_OVER_GARBAGE
    assert (claims.read(TASK) or "").startswith(f"{STARTED} 0 ")
    # A finish by someone who never held it leaves the claim alone.
    assert finish(claims, "zz") is FinishStatus.TAKEN_OVER


def test_bad_ttls_and_states_are_refused(claims: RunClaims) -> None:
    with pytest.raises(ValueError, match="at least 1 ms"):
        claim(claims, "a", ttl=timedelta(0))
    claim(claims, "a")
    with pytest.raises(ValueError, match="retrying or done"):
        finish(claims, "a", STARTED)


def renew(claims: RunClaims, nonce: str, retries: int = 0, ttl: timedelta = HOUR) -> RenewStatus:
    return claims.renew(task_id=TASK, nonce=nonce, ttl=ttl, retries=retries, worker="w1@host")


def test_a_renewal_extends_only_its_own_started_claim(claims: RunClaims) -> None:
    key = KEYS.run_claim(TASK)
    claim(claims, "a", ttl=timedelta(seconds=5))
    before = claims.read(TASK)
    assert renew(claims, "a", ttl=HOUR) is RenewStatus.RENEWED
    assert claims.client.pttl(key) > 5_000
    assert claims.read(TASK) == before  # only the TTL changes: same state, since, worker
    claims.client.pexpire(key, 5_000)
    # Another delivery of the same attempt never extends it.
    assert renew(claims, "b", ttl=HOUR) is RenewStatus.TAKEN_OVER
    assert claims.client.pttl(key) <= 5_000
    assert executions(claims) == [("w1@host", 0)]  # a renewal is no execution


def test_a_renewal_never_shortens_a_finished_claim(claims: RunClaims) -> None:
    claim(claims, "a")
    finish(claims, "a")
    assert renew(claims, "a", ttl=timedelta(seconds=3)) is RenewStatus.FINISHED
    assert claims.client.pttl(KEYS.run_claim(TASK)) > timedelta(days=6).total_seconds() * 1000
    assert (claims.read(TASK) or "").startswith(f"{DONE} 0 ")


def test_a_renewal_leaves_a_later_attempts_claim_alone(claims: RunClaims) -> None:
    claim(claims, "a", retries=0)
    claim(claims, "b", retries=1, ttl=timedelta(seconds=5))
    assert renew(claims, "a", retries=0) is RenewStatus.SUPERSEDED
    assert claims.client.pttl(KEYS.run_claim(TASK)) <= 5_000


def test_a_renewal_writes_a_lapsed_claim_afresh_unless_someone_claimed_it(
    claims: RunClaims,
) -> None:
    claim(claims, "a")
    claims.client.delete(KEYS.run_claim(TASK))  # lapsed, or lost by a Redis restart
    assert renew(claims, "a", ttl=timedelta(seconds=30)) is RenewStatus.REWRITTEN
    state, retries, _since, nonce, worker = (claims.read(TASK) or "").split(" ", 4)
    assert (state, retries, nonce, worker) == (STARTED, "0", "a", "w1@host")
    assert claim(claims, "b").status is ClaimStatus.REPEAT  # it holds repeats off again
    claims.client.delete(KEYS.run_claim(TASK))
    claim(claims, "c", worker="w2@host")
    assert renew(claims, "a") is RenewStatus.TAKEN_OVER
    assert (claims.read(TASK) or "").split(" ")[3] == "c"


def test_a_key_of_the_wrong_type_is_state_corrupt(claims: RunClaims) -> None:
    claims.client.hset(KEYS.run_claim(TASK), "not", "ours")
    calls = [
        lambda: claim(claims, "a"),
        lambda: finish(claims, "a"),
        lambda: renew(claims, "a"),
        lambda: claims.release(task_id=TASK, nonce="a"),
        lambda: claims.read(TASK),
    ]
    for call in calls:
        with pytest.raises(StateCorrupt, match="WRONGTYPE"):
            call()
    claims.client.delete(KEYS.run_claim(TASK))
    claims.client.hset(KEYS.executions, "not", "a stream")
    with pytest.raises(StateCorrupt, match="executions stream"):
        claims.executions()


def test_an_unreachable_redis_is_store_unavailable() -> None:
    down = RunClaims(redis_client(f"redis://127.0.0.1:{free_port()}/0"), KEYS)
    with pytest.raises(StoreUnavailable, match=f"claiming the run of task {TASK}"):
        claim(down, "a")
    with pytest.raises(StoreUnavailable, match="renewing"):
        renew(down, "a")
    with pytest.raises(StoreUnavailable):
        down.executions()
