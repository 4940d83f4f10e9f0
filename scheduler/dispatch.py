"""From due slots to claims in Redis, under the fencing check.

Same Redis server for state and broker: the claim script also runs kombu's LPUSH, so claim and
enqueue are one atomic step and a slot is enqueued exactly once. Any other broker: the claim
script appends the slot's message to a durable outbox, which the publisher (publisher.py)
sends.

Claims go in chunks, each one short script on the server, so a planned stop can hand back
the rest of a long burst and the lease renewal never waits behind it.

A job with `overlap = "skip"` whose previous run is still in progress (as its worker reports:
`scheduler.store.running`) does not get the slot: it is recorded as a missed range with reason
"overlap", in the same fenced claim that advances its watermark. A message enqueued but not
yet received by a worker is not a run in progress; jobs that allow overlap cost nothing here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.engine import Due
from scheduler.errors import ClockSkew, StateCorrupt
from scheduler.jobspec import JobSpec
from scheduler.messages import MessageFactory
from scheduler.ports import LeaderStore
from scheduler.records import ClaimStatus, Corruption, FireClaim, MissedRange
from scheduler.store.claims import CLAIM_CHUNK, Claims
from scheduler.store.running import running_jobs
from scheduler.wire import slot_text

log = logging.getLogger(__name__)

# How long a claim waits for one replica to acknowledge it (Sentinel deployments).
REPLICA_WAIT_MS = 100
OVERLAP = "overlap"  # the reason of a slot skipped because the job's previous run goes on

# Of these jobs, those with a run in progress, each with that run's task id.
RunningJobs = Callable[[Sequence[str]], Mapping[str, str]]


@dataclass(slots=True)
class Sent:
    """Counts of one dispatch, by what the claims said, and what the engine must re-read."""

    fired: int = 0
    paused: int = 0
    already: int = 0
    outbox_full: int = 0
    handed_back: int = 0
    missed_ranges: int = 0
    # Slots not sent because their job's previous run was still going (overlap = "skip").
    skipped_overlap: int = 0
    # Jobs with slots that were not claimed (handed back): their watermarks in Redis are
    # older than the engine's, so the engine must take them from Redis again.
    unclaimed: set[str] = field(default_factory=set)
    # Jobs whose claims found a value in Redis that is not ours: one entry each.
    corrupt: list[Corruption] = field(default_factory=list)
    # (job, slot, outcome) of each due fire that was not enqueued, for /metrics (metrics.py
    # OUTCOMES); empty in a clean burst, so counting by job stays one pass over the fires.
    not_enqueued: list[tuple[str, int, str]] = field(default_factory=list)


# How /metrics names a fire the claim script did not enqueue.
_NOT_ENQUEUED: dict[int, str] = {
    ClaimStatus.TAKEN_BY_OTHER: "already_fired",
    ClaimStatus.ALREADY_OURS: "already_fired",
    ClaimStatus.PAUSED: "skipped_paused",
    ClaimStatus.OUTBOX_FULL: "outbox_full",
    ClaimStatus.CORRUPT: "corrupt",
    ClaimStatus.FUTURE: "future",
}


class Dispatcher:
    def __init__(
        self,
        claims: LeaderStore,
        factory: MessageFactory,
        atomic: bool,
        outbox_cap: int,
        wait_for_replica: bool = False,
        running: RunningJobs | None = None,
    ) -> None:
        """`running` answers which jobs have a run in progress (default: the worker reports
        in the claims' Redis; None there, with another store: overlap is never seen)."""
        self.claims = claims
        self.running = running if running is not None else _reported_running(claims)
        self._overlap_complaint = ""  # logged once while it lasts
        self.factory = factory
        self.atomic = atomic
        self.outbox_cap = 0 if atomic else outbox_cap
        # Behind Sentinel: after each claim, WAIT until a replica has it (or a short timeout),
        # so a promotion right after a claim rarely loses it. WAIT cannot run in a script.
        self.wait_for_replica = wait_for_replica
        self._unreplicated_since: float | None = None
        # Claims built ahead of their slot, by (job, slot): a burst then only sends them.
        self._prepared: dict[tuple[str, int], tuple[JobSpec, int, FireClaim]] = {}

    def send(
        self,
        lease_value: str,
        token: int,
        due: Due,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> Sent:
        """Claim `due` chunk by chunk while `keep_going()`; the rest is handed back unclaimed.

        Raises LeaseLost (nothing of the refused chunk written), ClockSkew (a slot was later
        than Redis TIME allows: nothing of it written), StoreUnavailable or StateCorrupt (a
        shared key); sending the same `due` again is safe: claims already made answer "already
        ours". A job whose own values are wrong comes back in `Sent.corrupt`, unclaimed.
        """
        fires, skipped = self._skip_overlapping(due.fires)
        sent = Sent(missed_ranges=len(due.missed) + len(skipped))
        sent.skipped_overlap = sum(gap.count for gap in skipped)
        if skipped:
            running = {gap.job for gap in skipped}
            sent.not_enqueued.extend(
                (job.name, slot_s, "skipped_overlap")
                for job, slot_s in due.fires
                if job.name in running and job.overlap == "skip"
            )
        missed: Sequence[MissedRange] = [*due.missed, *skipped] if skipped else due.missed
        for start in range(0, max(len(fires), 1), CLAIM_CHUNK):
            chunk = fires[start : start + CLAIM_CHUNK]
            if start and not keep_going():
                rest = fires[start:]
                sent.handed_back = len(rest)
                sent.unclaimed.update(job.name for job, _ in rest)
                sent.not_enqueued.extend((job.name, slot_s, "handed_back") for job, slot_s in rest)
                log.info("handing back %d unclaimed slot(s) of this burst", sent.handed_back)
                break
            reply = self.claims.claim(
                lease_value, token, self._claims(chunk, token), missed, self.outbox_cap
            )
            missed = ()
            if self.wait_for_replica:
                self._wait_for_replica()
            statuses = reply.statuses
            self._count(sent, chunk, statuses, token)
            sent.corrupt.extend(reply.corrupt)
            if ClaimStatus.FUTURE in statuses:
                later = [
                    fire
                    for fire, status in zip(chunk, statuses, strict=True)
                    if status == ClaimStatus.FUTURE
                ]
                raise ClockSkew(
                    f"{len(later)} slot(s) refused as later than Redis TIME allows, first "
                    f"{later[0][0].name} at {slot_text(later[0][1])}: this node's clock is ahead"
                )
            refused = [
                fire
                for fire, status in zip(chunk, statuses, strict=True)
                if status == ClaimStatus.OUTBOX_FULL
            ]
            if refused:
                self._record_outbox_full(lease_value, token, refused)
        for gap in due.missed:
            log.warning(
                "missed %d slot(s) of %s from %s to %s (%s)",
                gap.count,
                gap.job,
                slot_text(gap.first_s),
                slot_text(gap.last_s),
                gap.reason,
            )
        for gap in skipped:
            log.info(
                "skipped %d slot(s) of %s from %s to %s: its previous run is still running "
                '(overlap = "skip")',
                gap.count,
                gap.job,
                slot_text(gap.first_s),
                slot_text(gap.last_s),
            )
        return sent

    def _skip_overlapping(
        self, fires: list[tuple[JobSpec, int]]
    ) -> tuple[list[tuple[JobSpec, int]], list[MissedRange]]:
        """The fires to send, and the slots of skip jobs still running as missed ranges (one
        per job: every due slot of a running job is skipped). One Redis call, and only when a
        due job asks to skip: a burst of jobs that allow overlap pays one scan of the list."""
        if self.running is None:
            return fires, []
        asking = {job.name for job, _ in fires if job.overlap == "skip"}
        if not asking:
            return fires, []
        try:
            running = self.running(sorted(asking))
        except StateCorrupt as exc:  # a wrong type where workers report: nothing looks running
            if str(exc) != self._overlap_complaint:
                log.error("overlap check: %s; treating every job as not running", exc)
            self._overlap_complaint = str(exc)
            return fires, []
        self._overlap_complaint = ""
        if not running:
            return fires, []
        kept: list[tuple[JobSpec, int]] = []
        slots: dict[str, list[int]] = {}
        for job, slot_s in fires:
            if job.name in running and job.overlap == "skip":
                slots.setdefault(job.name, []).append(slot_s)
            else:
                kept.append((job, slot_s))
        skipped = [
            MissedRange(name, min(found), max(found), len(found), OVERLAP)
            for name, found in slots.items()
        ]
        return kept, skipped

    def _wait_for_replica(self) -> None:
        acked = self.claims.wait_for_replicas(1, REPLICA_WAIT_MS)
        if acked >= 1:
            if self._unreplicated_since is not None:
                log.info("a replica acknowledges claims again")
            self._unreplicated_since = None
        elif self._unreplicated_since is None:
            self._unreplicated_since = time.monotonic()
            log.warning(
                "no replica acknowledged a claim within %d ms: a Sentinel promotion now could "
                "lose it (see docs/guarantees.md)",
                REPLICA_WAIT_MS,
            )

    def prepare(self, fires: Sequence[tuple[JobSpec, int]], token: int) -> None:
        """Build the claims (messages included) of fires expected soon, before their slot."""
        prepared = {}
        for job, slot_s in fires:
            prepared[(job.name, slot_s)] = (job, token, self._fire_claim(job, slot_s, token))
        self._prepared = prepared

    def _claims(self, chunk: Sequence[tuple[JobSpec, int]], token: int) -> list[FireClaim]:
        claims = []
        for job, slot_s in chunk:
            ready = self._prepared.pop((job.name, slot_s), None)
            if ready is not None and ready[0] is job and ready[1] == token:
                claims.append(ready[2])
                continue
            claims.append(self._fire_claim(job, slot_s, token))
        return claims

    def _fire_claim(self, job: JobSpec, slot_s: int, token: int) -> FireClaim:
        """The messages go to their queues in the claim (same Redis) or into the outbox: one,
        or every member of a group, claimed together."""
        if job.compose != "group":  # one message (an attribute read: plain jobs pay nothing)
            push = self.factory.redis_push(job, slot_s, token)
            return FireClaim(job.name, slot_s, push.key if self.atomic else "", push.payload)
        first, *rest = self.factory.redis_pushes(job, slot_s, token)
        more = tuple((push.key if self.atomic else "", push.payload) for push in rest)
        return FireClaim(job.name, slot_s, first.key if self.atomic else "", first.payload, more)

    @staticmethod
    def _count(
        sent: Sent, chunk: Sequence[tuple[JobSpec, int]], statuses: list[int], token: int
    ) -> None:
        sent.fired += statuses.count(ClaimStatus.CLAIMED)
        sent.paused += statuses.count(ClaimStatus.PAUSED)
        sent.already += statuses.count(ClaimStatus.ALREADY_OURS)
        sent.already += statuses.count(ClaimStatus.TAKEN_BY_OTHER)
        sent.outbox_full += statuses.count(ClaimStatus.OUTBOX_FULL)
        for (job, slot_s), status in zip(chunk, statuses, strict=True):
            if status == ClaimStatus.CLAIMED:
                log.debug("fired %s at slot %s (token %d)", job.name, slot_text(slot_s), token)
            else:
                sent.not_enqueued.append((job.name, slot_s, _NOT_ENQUEUED[status]))

    def _record_outbox_full(
        self, lease_value: str, token: int, refused: Sequence[tuple[JobSpec, int]]
    ) -> None:
        """Slots the full outbox refused become missed ranges: recorded, never silently gone."""
        by_job: dict[str, list[int]] = {}
        for job, slot_s in refused:
            by_job.setdefault(job.name, []).append(slot_s)
        ranges = [
            MissedRange(name, min(slots), max(slots), len(slots), "outbox_full")
            for name, slots in by_job.items()
        ]
        self.claims.claim(lease_value, token, [], ranges, self.outbox_cap)
        log.error(
            "OUTBOX FULL (%d entries): the broker is not taking messages; %d slot(s) of %d "
            "job(s) recorded as missed instead of claimed",
            self.outbox_cap,
            len(refused),
            len(ranges),
        )


def _reported_running(claims: LeaderStore) -> RunningJobs | None:
    """Which jobs run, from the worker reports in the Redis of `claims` (our Redis store)."""
    if not isinstance(claims, Claims):
        return None
    return lambda jobs: running_jobs(claims.client, claims.keys, jobs, claims.clock.time())
