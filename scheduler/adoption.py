"""A leader adopts the watermarks of the jobs it takes on, and says what it had to repair."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from scheduler.quarantine import names, repairing
from scheduler.records import AdoptFlag
from scheduler.store.claims import Claims
from scheduler.wire import slot_text

log = logging.getLogger(__name__)

_RESETS = (
    (AdoptFlag.RESET_UNREADABLE, "not a whole number of seconds"),
    (AdoptFlag.RESET_OUT_OF_RANGE, "negative or later than Redis TIME allows"),
)


def adopt(claims: Claims, lease_value: str, now_s: int, jobs: Iterable[str]) -> dict[str, int]:
    """Watermarks of `jobs` from Redis; a job without one, or with one that cannot be read,
    starts from `now_s` (logged; an unreadable one is also recorded in `jobs missed`)."""
    wanted = sorted(jobs)
    adopted = repairing(claims, lease_value, lambda: claims.adopt(lease_value, now_s, wanted))
    for flag, what in _RESETS:
        reset = [job for job, (_, found) in adopted.items() if found == flag]
        if reset:
            log.error(
                "watermark of %s in Redis was %s; restarted from now (%s), recorded in "
                "`jobs missed`",
                reset[0] if len(reset) == 1 else f"{len(reset)} jobs ({names(reset)})",
                what,
                slot_text(now_s),
            )
    started = [job for job, (_, flag) in adopted.items() if flag == AdoptFlag.STARTED_NOW]
    if started:
        log.info(
            "%d job(s) without a watermark start from now (%s): %s",
            len(started),
            slot_text(now_s),
            names(started),
        )
    return {job: mark for job, (mark, _) in adopted.items()}
