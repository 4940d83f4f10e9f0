"""What a reload changes, and what of it a running node can take: pure.

Each `[scheduler]` key is one of three kinds for a running node:
- applied at once (the jobs' default time zone, includes, alerts, the outbox cap, the clock
  offset, the metrics bound);
- read only at start (where state and the broker live, the lease's length, the secrets, the
  HTTP listener, the message options): a reload keeps the running value and says which keys
  wait for a restart, in the log and in `scheduler status`;
- read by the workers, not the node (history retention, result store): they take it when
  they restart.

A key that is added to the settings model must be placed in one of these sets; a test checks
that every field is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.config import Config, SchedulerSettings
from scheduler.drift import Drift, compare, fingerprints
from scheduler.jobspec import JobSpec

APPLIED_LIVE = frozenset(
    {
        "timezone",
        "include",
        "alert_task",
        "alert_webhook",
        "outbox_max",
        "max_clock_offset",
        "metrics_jobs_max",
    }
)
NEEDS_RESTART = frozenset(
    {
        "redis_url",
        "broker_url",
        "namespace",
        "redis_password",
        "redis_password_file",
        "lease_ttl",
        "http_listen",
        "message_key_file",
        "broker_transport_options",
    }
)
READ_BY_WORKERS = frozenset({"history_max", "history_ttl", "result_backend", "result_expires"})


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """A reload: the config to run, and what changed."""

    config: Config  # the new file's config, with the keys that wait for a restart kept
    jobs: Drift
    applied: tuple[str, ...]  # [scheduler] keys that changed and take effect now
    restart_needed: tuple[str, ...]  # keys whose new value waits for a restart
    for_workers: tuple[str, ...]  # keys that changed and that the workers read

    def summary(self, shown: int = 10) -> str:
        """What the reload changed, for the log: `added b; changed c (cron); applied
        outbox_max; restart needed for lease_ttl (kept as running)`."""
        parts = [self.jobs.describe(shown=shown) if self.jobs else "no job changed"]
        if self.applied:
            parts.append(f"applied {', '.join(self.applied)}")
        if self.for_workers:
            parts.append(f"restart the workers for {', '.join(self.for_workers)}")
        if self.restart_needed:
            parts.append(f"restart needed for {', '.join(self.restart_needed)} (kept as running)")
        return "; ".join(parts)


def changed_keys(old: SchedulerSettings, new: SchedulerSettings) -> list[str]:
    """The `[scheduler]` keys whose values differ, in the model's order."""
    return [key for key in SchedulerSettings.model_fields if getattr(old, key) != getattr(new, key)]


def plan_reload(
    running: Config,
    started_with: SchedulerSettings,
    fresh: Config,
    running_jobs: Mapping[str, JobSpec] | None = None,
    fresh_jobs: Mapping[str, JobSpec] | None = None,
) -> ReloadPlan:
    """How to go from `running` to `fresh`. `started_with` is what the node read at start:
    a key that waits for a restart is compared with it, so reloading back to the running
    value clears the wait. The jobs compared are the config's unless given (with runtime
    jobs merged)."""
    before = running.scheduler
    after = fresh.scheduler
    waiting = [key for key in changed_keys(started_with, after) if key in NEEDS_RESTART]
    effective = after.model_copy(update={key: getattr(started_with, key) for key in waiting})
    changed = changed_keys(before, after)
    return ReloadPlan(
        config=dataclasses.replace(fresh, scheduler=effective),
        jobs=compare(
            fingerprints(running.jobs if running_jobs is None else running_jobs),
            fingerprints(fresh.jobs if fresh_jobs is None else fresh_jobs),
        ),
        applied=tuple(key for key in changed if key in APPLIED_LIVE),
        restart_needed=tuple(waiting),
        for_workers=tuple(key for key in changed if key in READ_BY_WORKERS),
    )
