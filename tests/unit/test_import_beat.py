"""`import beat`'s pure parts: a celery beat_schedule as TOML jobs, compared with celery's own
crontab arithmetic and croniter, and loaded back by the config loader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule, solar
from kombu import Exchange, Queue

from scheduler.config import load_config
from scheduler.importers.beat import import_beat
from scheduler.importers.celery_crontab import cron_text
from scheduler.importers.toml_text import ImportResult, render
from tests.configs import config_file

SINCE = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
AND_RULE = (
    "celery's crontab() needs day_of_month AND day_of_week to match; cron (and this project) "
    "fires on either when both are restricted"
)


def beat(entries: dict[str, Any], timezone: str | None = "Europe/Berlin") -> ImportResult:
    app = Celery("sample", set_as_current=False)
    app.conf.timezone = timezone
    app.conf.beat_schedule = entries
    return import_beat(app, SINCE)


def job_keys(result: ImportResult, name: str) -> dict[str, Any]:
    return next(dict(job.keys) for job in result.jobs if job.name == name)


def job_comments(result: ImportResult, name: str) -> tuple[str, ...]:
    return next(job.comments for job in result.jobs if job.name == name)


@pytest.mark.parametrize(
    ("fields", "text", "anded"),
    [
        ({}, "* * * * *", False),
        ({"minute": "*/15", "hour": "2"}, "*/15 2 * * *", False),
        ({"minute": 0, "hour": [9, 10, 11, 17]}, "0 9-11,17 * * *", False),
        ({"minute": 30, "day_of_week": "mon-fri"}, "30 * * * mon-fri", False),
        # celery reads "monday" as Monday; this project's parser does not: the set is written.
        ({"minute": 0, "day_of_week": "monday"}, "0 * * * 1", False),
        ({"minute": 0, "day_of_month": "1-31", "day_of_week": "1"}, "0 * * * 1", False),
        ({"minute": 0, "hour": 0, "day_of_month": 13, "day_of_week": "fri"}, "0 0 13 * fri", True),
        # The Nth weekday: celery's AND, said exactly with n#k.
        ({"minute": 0, "hour": 9, "day_of_month": "1-7", "day_of_week": 1}, "0 9 * * 1#1", False),
        ({"minute": 0, "day_of_month": "15-21", "day_of_week": "1,3"}, "0 * * * 1#3,3#3", False),
    ],
)
def test_crontab_fields_become_cron_text(fields: dict[str, Any], text: str, anded: bool) -> None:
    written = cron_text(crontab(**fields))
    assert (written.text, written.days_anded) == (text, anded)


def test_anded_day_fields_are_flagged_with_the_first_slot_that_differs() -> None:
    result = beat({"friday13": {"task": "luck.check", "schedule": crontab(0, 0, "fri", 13)}})
    # celery waits for a Friday the 13th; cron fires on every Friday and every 13th.
    line = (
        "celery fires 2027-08-13T00:00:00+02:00, this cron fires 2026-12-04T00:00:00+01:00: "
        + AND_RULE
    )
    assert job_comments(result, "friday13") == (line,)
    assert result.problems == (f"beat_schedule['friday13']: {line}",)
    assert job_keys(result, "friday13") == {
        "task": "luck.check",
        "cron": "0 0 13 * fri",
        "timezone": "Europe/Berlin",
    }


def test_the_nth_weekday_rewrite_fires_exactly_when_celery_does() -> None:
    first_monday = crontab(minute=0, hour=9, day_of_week=1, day_of_month="1-7")
    result = beat({"report": {"task": "reports.monthly", "schedule": first_monday}})
    assert job_keys(result, "report")["cron"] == "0 9 * * 1#1"
    assert job_comments(result, "report") == ()
    assert result.problems == ()


def test_a_daylight_saving_difference_is_named() -> None:
    result = beat({"q": {"task": "t", "schedule": crontab(minute="*/15", hour=2)}})
    # Berlin skips 02:00-03:00 on 2027-03-28: a wildcard-minute job has no slot in the gap
    # here (README), celery runs at 03:00, and so does croniter.
    assert job_comments(result, "q") == (
        "celery fires 2027-03-28T03:00:00+02:00, this cron fires 2027-03-29T02:00:00+02:00: "
        "celery's crontab arithmetic differs around a daylight-saving change",
        "croniter (Airflow, rq-scheduler) fires 2027-03-28T03:00:00+02:00, this cron fires "
        "2027-03-29T02:00:00+02:00: this project follows cronie across the daylight-saving change",
    )


def test_croniter_reading_a_star_step_day_differently_is_noted() -> None:
    entry = crontab(minute=0, hour=3, day_of_month="*/2", day_of_week="mon-fri")
    result = beat({"rotate": {"task": "t", "schedule": entry}}, timezone=None)
    # cronie (and celery): odd days that are weekdays (Thu 3rd, then Mon 7th); croniter ORs
    # "*/2" with the weekdays, so Friday the 4th fires too.
    assert job_comments(result, "rotate") == (
        "croniter (Airflow, rq-scheduler) fires 2026-12-04T03:00:00+00:00, this cron fires "
        "2026-12-07T03:00:00+00:00: croniter ORs a */n day field with the other day field; cronie "
        "ANDs them when either starts with *",
    )
    assert "timezone" not in job_keys(result, "rotate")


@pytest.mark.parametrize(
    ("value", "every"),
    [(30, "30s"), (90.0, "1m30s"), (timedelta(hours=2), "2h"), (schedule(timedelta(days=1)), "1d")],
)
def test_intervals_become_every(value: object, every: str) -> None:
    result = beat({"tick": {"task": "t", "schedule": value}})
    assert job_keys(result, "tick") == {"task": "t", "every": every}
    assert result.notes == (
        "celery beat counts an interval from its own start; here `every` slots are on a fixed "
        "grid (the Unix epoch + k * every), the same on every node",
    )


class EveryOtherRun(schedule):  # type: ignore[misc]
    """A user's own schedule class: beat asks it, nothing here can."""


def test_what_has_no_equivalent_is_a_comment_and_a_line_and_no_job() -> None:
    sun = solar.__new__(solar)  # solar() itself needs the ephem package
    sun.event = "sunrise"
    result = beat(
        {
            "half": {"task": "t", "schedule": 0.5},
            "sun": {"task": "t", "schedule": sun},
            "custom": {"task": "t", "schedule": "every day"},
            "nulls": {"task": "t", "schedule": 60, "args": [None]},
            "notask": {"schedule": 60},
            "textargs": {"task": "t", "schedule": 60, "args": "abc"},
        }
    )
    assert result.jobs == ()
    assert result.problems == (
        "beat_schedule['half']: not imported: interval 0.5s is not whole seconds of at least "
        "1s, which `every` needs",
        "beat_schedule['sun']: not imported: solar schedules (sunrise) are unsupported: no key "
        "fires at sunrise or sunset; use a cron near it",
        "beat_schedule['custom']: not imported: schedule 'every day' (str) is unsupported: only "
        "crontab, schedule, timedelta and seconds have an equivalent",
        "beat_schedule['nulls']: not imported: args[0] is None, which TOML cannot write",
        "beat_schedule['notask']: not imported: needs a task name, got None",
        "beat_schedule['textargs']: not imported: args must be a list or tuple, got str",
    )
    assert result.notes == tuple(p.replace("]: not", "] not") for p in result.problems)


def test_options_with_a_job_key_are_carried_and_the_rest_named() -> None:
    options = {
        "queue": Queue("math"),
        "exchange": Exchange("work"),
        "routing_key": "math.add",
        "priority": 7,
        "expires": 25,
        "soft_time_limit": 50,
        "time_limit": timedelta(minutes=1),
        "ignore_result": True,
        "headers": {"team": "a"},
        "countdown": 3,
    }
    entry = {"task": "tasks.add", "schedule": 30, "args": (4, 4), "kwargs": {"z": 1}}
    result = beat({"add": {**entry, "options": options}})
    assert job_keys(result, "add") == {
        "task": "tasks.add",
        "every": "30s",
        "args": [4, 4],
        "kwargs": {"z": 1},
        "queue": "math",
        "exchange": "work",
        "routing_key": "math.add",
        "priority": 7,
        "expires": "25s",
        "soft_time_limit": "50s",
        "time_limit": "1m",
        "ignore_result": True,
        "headers": {"team": "a"},
    }
    assert job_comments(result, "add") == (
        "options['countdown'] not carried over: no job key for it",
    )


def test_names_are_made_valid_and_unique_and_say_so() -> None:
    result = beat({"a b": {"task": "t", "schedule": 60}, "a-b": {"task": "t", "schedule": 60}})
    assert [job.name for job in result.jobs] == ["a-b", "a-b-2"]
    assert job_comments(result, "a-b") == (
        "beat entry 'a b', renamed: job names are letters, digits, _ - .",
    )
    assert job_comments(result, "a-b-2") == (
        "beat entry 'a-b', renamed: job names are letters, digits, _ - .",
    )


def test_the_output_loads_as_a_config(tmp_path: Path) -> None:
    result = beat(
        {
            "first monday": {"task": "r", "schedule": crontab(0, 9, 1, "1-7")},
            "friday.13": {"task": "l", "schedule": crontab(0, 0, "fri", 13)},
            "add": {
                "task": "tasks.add",
                "schedule": 30,
                "args": [4, 4],
                "options": {"queue": "math", "priority": 5, "expires": 25, "headers": {"a": 1}},
            },
        }
    )
    path = config_file(tmp_path, "[scheduler]\n" + render(result))
    config = load_config(path)
    assert sorted(config.jobs) == ["add", "first-monday", "friday.13"]
    add = config.jobs["add"]
    assert (add.task, add.schedule, add.args, add.queue, add.priority) == (
        "tasks.add", "30s", (4, 4), "math", 5,
    )  # fmt: skip
    assert add.expires == timedelta(seconds=25)
    assert config.jobs["first-monday"].schedule == "0 9 * * 1#1"
    assert config.jobs["first-monday"].timezone.key == "Europe/Berlin"


def test_a_repeated_hour_is_walked_slot_by_slot() -> None:
    result = beat({"every-minute": {"task": "t", "schedule": crontab()}})
    # 2027-10-31 in Berlin: 02:00-02:59 twice. A wildcard job fires in both passes (README);
    # after 02:59 summer time celery goes on at 03:00 winter time, skipping the second pass.
    assert job_comments(result, "every-minute") == (
        "celery fires 2027-10-31T03:00:00+01:00, this cron fires 2027-10-31T02:00:00+01:00: "
        "celery's crontab arithmetic differs around a daylight-saving change",
    )
