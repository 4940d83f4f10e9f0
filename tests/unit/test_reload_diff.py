"""What a reload changes and what a running node can take of it (scheduler/reload_diff.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from scheduler.config import Config, SchedulerSettings, load_config
from scheduler.reload_diff import APPLIED_LIVE, NEEDS_RESTART, READ_BY_WORKERS, plan_reload
from tests.configs import config_file

BASE = """
[scheduler]
redis_url = "redis://127.0.0.1:6379/0"
namespace = "prod"
lease_ttl = "2s"
outbox_max = 100
{extra}

[jobs.a]
task = "t.a"
every = "1m"

[jobs.b]
task = "t.b"
cron = "0 * * * *"
{jobs}
"""


def config(tmp_path: Path, extra: str = "", jobs: str = "", name: str = "x.toml") -> Config:
    return load_config(config_file(tmp_path, BASE.format(extra=extra, jobs=jobs), name))


def test_every_scheduler_key_has_one_kind() -> None:
    kinds = [APPLIED_LIVE, NEEDS_RESTART, READ_BY_WORKERS]
    assert set(SchedulerSettings.model_fields) == set().union(*kinds)
    assert sum(len(kind) for kind in kinds) == len(SchedulerSettings.model_fields)


def test_jobs_added_removed_changed_in_one_line(tmp_path: Path) -> None:
    running = config(tmp_path)
    fresh = load_config(
        config_file(
            tmp_path,
            BASE.format(extra="", jobs='\n[jobs.c]\ntask = "t.c"\nevery = "5s"\n')
            .replace('cron = "0 * * * *"', 'cron = "5 * * * *"')
            .replace('[jobs.a]\ntask = "t.a"\nevery = "1m"\n', ""),
            "y.toml",
        )
    )
    plan = plan_reload(running, running.scheduler, fresh)
    assert plan.summary() == "added c; removed a; changed b (cron)"
    assert plan.config.jobs == fresh.jobs
    assert plan.restart_needed == plan.applied == ()


def test_live_keys_are_applied_and_start_keys_wait_for_a_restart(tmp_path: Path) -> None:
    running = config(tmp_path)
    text = (
        running.path.read_text()
        .replace('lease_ttl = "2s"', 'lease_ttl = "4s"')
        .replace('namespace = "prod"', 'namespace = "other"')
        .replace("outbox_max = 100", 'outbox_max = 5\nmax_clock_offset = "3s"\nhistory_max = 50')
    )
    fresh = load_config(config_file(tmp_path, text, "y.toml"))
    plan = plan_reload(running, running.scheduler, fresh)
    assert plan.applied == ("max_clock_offset", "outbox_max")
    assert plan.restart_needed == ("namespace", "lease_ttl")
    assert plan.for_workers == ("history_max",)
    assert plan.summary() == (
        "no job changed; applied max_clock_offset, outbox_max; restart the workers for "
        "history_max; restart needed for namespace, lease_ttl (kept as running)"
    )
    # What runs: the new live values, the values read at start for the others.
    settings = plan.config.scheduler
    assert (settings.outbox_max, settings.max_clock_offset) == (5, timedelta(seconds=3))
    assert (settings.namespace, settings.lease_ttl) == ("prod", timedelta(seconds=2))
    assert plan.config.hash == fresh.hash  # the file's hash: what other nodes compare


def test_a_restart_key_set_back_clears_the_wait(tmp_path: Path) -> None:
    started = config(tmp_path)
    changed = load_config(
        config_file(tmp_path, started.path.read_text().replace('"2s"', '"4s"'), "y.toml")
    )
    first = plan_reload(started, started.scheduler, changed)
    assert first.restart_needed == ("lease_ttl",)
    back = plan_reload(first.config, started.scheduler, started)
    assert back.restart_needed == ()
    assert back.summary() == "no job changed"
