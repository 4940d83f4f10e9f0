"""What a leader does with values in Redis that are not what it wrote.

A deterministic error is never retried as if it were transient. When the wrong value serves
one job (its queue key holds a hash, its open missed range is unreadable), that job is
quarantined: it is not fired, it is named in the log once and in `status`, it is tried again
now and then, and it fires again (catching up by its policy) once the value is fixed. When the
wrong value is a key every job shares (a string at the watermarks hash), the key is moved
aside, kept for inspection, and the scheduler starts it afresh: every other job keeps firing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import TypeVar

from scheduler.clock import Clock
from scheduler.errors import SchedulerError, StateCorrupt
from scheduler.ports import LeaderStore
from scheduler.records import Corruption
from scheduler.store.state import StateStore

log = logging.getLogger(__name__)

T = TypeVar("T")

# A quarantined job is tried again this often, so it fires again once its value is fixed.
RETRY_S = 10.0
# How many wrong shared keys one step may move aside before it gives up until the next turn.
SET_ASIDE_TRIES = 3

# What moving a shared key aside means for the schedule, for the log line.
_SET_ASIDE_MEANS = {
    "watermarks": "every job restarts from now, as after a state loss",
    "paused": "which jobs were paused is unknown: every job fires until paused again",
    "outbox": "the entries it held were not ours to publish",
}


class Quarantine:
    """The jobs a leader does not fire now, each with what was found in Redis."""

    def __init__(self, store: StateStore, clock: Clock, retry_s: float = RETRY_S) -> None:
        self.store = store
        self.clock = clock
        self.retry_s = retry_s
        self.jobs: dict[str, Corruption] = {}
        self._tried_at = 0.0

    def __contains__(self, job: object) -> bool:
        return job in self.jobs

    def add(self, corruptions: Iterable[Corruption]) -> None:
        """Quarantine these jobs; one log line per kind of wrong value, not per job (a string
        at a queue key that 10,000 jobs share is one problem)."""
        fresh = [c for c in corruptions if c.job is not None and c.job not in self.jobs]
        if not fresh:
            return  # still wrong at their retry: said already
        self._tried_at = self.clock.monotonic()  # the next try is a whole retry_s away
        alike: dict[tuple[str, str], list[str]] = {}
        for corruption in fresh:
            assert corruption.job is not None
            self.jobs[corruption.job] = corruption
            alike.setdefault((corruption.key, corruption.found), []).append(corruption.job)
        for (key, found), jobs in alike.items():
            who = f"job {jobs[0]}" if len(jobs) == 1 else f"{len(jobs)} jobs ({names(jobs)})"
            log.error(
                "%s quarantined: key %s holds %s, not what the scheduler wrote; its slots are "
                "not fired (tried again every %gs; what falls due meanwhile is caught up by its "
                "policy or recorded as missed); every other job goes on",
                who,
                key,
                found,
                self.retry_s,
            )
        since = self.clock.time()
        _best_effort(lambda: self.store.quarantine(fresh, since))

    def release(self, jobs: set[str]) -> None:
        """These jobs were claimed again: their values are readable now."""
        healed = jobs & set(self.jobs)
        for job in sorted(healed):
            log.warning("job %s fires again: its value in Redis is readable now", job)
            del self.jobs[job]
        if healed:
            _best_effort(lambda: self.store.release_quarantine(healed))

    def to_retry(self, on_agenda: AbstractSet[str]) -> set[str]:
        """Quarantined jobs to put back on the agenda now (a claim then tells), if it is time.
        Called every turn: costs nothing while no job is quarantined."""
        now = self.clock.monotonic()
        if not self.jobs or now - self._tried_at < self.retry_s:
            return set()
        self._tried_at = now
        return set(self.jobs) - on_agenda


def repairing(claims: LeaderStore, lease_value: str, call: Callable[[], T]) -> T:
    """Run a fenced store call; a shared key of the wrong type is moved aside (logged), then
    the call is made again. Bounded: a key that keeps coming back raises StateCorrupt."""
    for attempt in range(SET_ASIDE_TRIES + 1):
        try:
            return call()
        except StateCorrupt as exc:
            if exc.key is None or exc.found is None or attempt == SET_ASIDE_TRIES:
                raise
            target = claims.set_aside(lease_value, exc.key, exc.found)
            name = exc.key.removeprefix(f"{claims.keys.namespace}:")
            log.error(
                "key %s held a %s, not what the scheduler writes there: moved to %s to inspect; %s",
                exc.key,
                exc.found,
                target or "(it changed meanwhile)",
                _SET_ASIDE_MEANS.get(name, "the scheduler starts it afresh"),
            )
    raise AssertionError("unreachable")


def names(jobs: list[str], shown: int = 20) -> str:
    """Job names for a log line: the first `shown`, sorted, and how many more."""
    more = f" and {len(jobs) - shown} more" if len(jobs) > shown else ""
    return ", ".join(sorted(jobs)[:shown]) + more


def _best_effort(write: Callable[[], None]) -> None:
    """What `status` shows must not stop the loop when it cannot be written."""
    try:
        write()
    except SchedulerError as exc:
        log.warning("could not record the quarantine for `status`: %s", exc)
