"""Issue 9: each kind of hostile value in a config is one exact line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.errors import ConfigError
from tests.configs import config_file

JOB = '[jobs.a]\ntask = "t"\n'
EVERY = JOB + 'every = "1m"\n'
LONG_ZONE = "a" * 300
TZ_HINT = '(use a tz database name like "Europe/Berlin")'
KOMBU = "is a key kombu's Redis transport keeps for itself"
DEEP = "[" * 40 + "]" * 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Durations: finite, at most 100 years.
        ("[scheduler]\nlease_ttl = 1e300", "scheduler.lease_ttl: duration 1e+300 is longer than 100 years (36525d)"),
        ("[scheduler]\nlease_ttl = inf", "scheduler.lease_ttl: duration must be a finite number of seconds, got inf"),
        ("[scheduler]\nlease_ttl = nan", "scheduler.lease_ttl: duration must be a finite number of seconds, got nan"),
        ("[scheduler]\nlease_ttl = 9223372036854775807", "scheduler.lease_ttl: duration 9223372036854775807 is longer than 100 years (36525d)"),
        ('[scheduler]\nlease_ttl = "99999999999d"', "scheduler.lease_ttl: duration '99999999999d' is longer than 100 years (36525d)"),
        ("[scheduler]\nmax_clock_offset = -inf", "scheduler.max_clock_offset: duration must be a finite number of seconds, got -inf"),
        (EVERY + "misfire_grace = inf", "jobs.a.misfire_grace: duration must be a finite number of seconds, got inf"),
        (JOB + "every = 1e300", "jobs.a.every: duration 1e+300 is longer than 100 years (36525d)"),
        (JOB + 'every = "36526d"', "jobs.a.every: duration '36526d' is longer than 100 years (36525d)"),
        # Instants whose UTC lies outside datetime's years.
        (JOB + "at = 0001-01-01T00:00:00+01:00", "jobs.a.at: 0001-01-01T00:00:00+01:00 is outside the years 1-9999 in UTC"),
        (JOB + "at = 9999-12-31T23:59:59-01:00", "jobs.a.at: 9999-12-31T23:59:59-01:00 is outside the years 1-9999 in UTC"),
        (JOB + 'at = "0001-01-01T00:30:00+01:00"', "jobs.a.at: 0001-01-01T00:30:00+01:00 is outside the years 1-9999 in UTC"),
        (JOB + 'at = 9999-12-31T23:00:00\ntimezone = "America/New_York"', "jobs.a.at: 9999-12-31T23:00:00-05:00 is outside the years 1-9999 in UTC"),
        (EVERY + "start = 0001-01-01T00:00:00+01:00", "jobs.a.start: 0001-01-01T00:00:00+01:00 is outside the years 1-9999 in UTC"),
        (EVERY + "start = 9999-12-31T23:59:59-01:00", "jobs.a.start: 9999-12-31T23:59:59-01:00 is outside the years 1-9999 in UTC"),
        # Zones: keys of the tzdata package only.
        (EVERY + 'timezone = "Europe"', f"jobs.a.timezone: unknown time zone 'Europe' {TZ_HINT}"),
        ('[scheduler]\ntimezone = "Europe"', f"scheduler.timezone: unknown time zone 'Europe' {TZ_HINT}"),
        (EVERY + f'timezone = "{LONG_ZONE}"', f"jobs.a.timezone: unknown time zone '{'a' * 29}... (300 characters) {TZ_HINT}"),
        (EVERY + 'timezone = "../../../../etc/passwd"', f"jobs.a.timezone: unknown time zone '../../../../etc/passwd' {TZ_HINT}"),
        (EVERY + 'timezone = "Europe/Ber\\u0000lin"', f"jobs.a.timezone: unknown time zone 'Europe/Ber\\x00lin' {TZ_HINT}"),
        (EVERY + 'timezone = "/usr/share/zoneinfo/UTC"', f"jobs.a.timezone: unknown time zone '/usr/share/zoneinfo/UTC' {TZ_HINT}"),
        # Arguments: JSON only, 32 levels at most.
        (EVERY + "args = [nan]", "jobs.a.args: args[0] is nan, which JSON cannot carry (no nan or inf)"),
        (EVERY + "args = [1, [2, inf]]", "jobs.a.args: args[1][1] is inf, which JSON cannot carry (no nan or inf)"),
        (EVERY + "kwargs = { a = { b = [-inf] } }", "jobs.a.kwargs: kwargs.a.b[0] is -inf, which JSON cannot carry (no nan or inf)"),
        (EVERY + f"args = {DEEP}", "jobs.a.args: nested deeper than 32 lists or tables (at args" + "[0]" * 32 + ")"),
        (EVERY + "kwargs = { when = 2026-01-01 }", "jobs.a.kwargs: values must be JSON (strings, numbers, booleans, lists, tables); kwargs.when is a date: datetime.date(2026, 1, 1)"),
        # Task and queue.
        (JOB.replace('"t"', '""') + 'every = "1m"', "jobs.a.task: must name a Celery task, got ''"),
        (JOB.replace('"t"', '" \\t "') + 'every = "1m"', "jobs.a.task: must name a Celery task, got ' \\t '"),
        (EVERY + 'queue = ""', "jobs.a.queue: must name a queue, got ''"),
        (EVERY + 'queue = "scheduler:paused"', "jobs.a.queue: 'scheduler:paused' is a key of this deployment (namespace 'scheduler'); a queue may not start with \"scheduler:\""),
        ('[scheduler]\nnamespace = "prod"\n' + EVERY + 'queue = "prod:lease"', "jobs.a.queue: 'prod:lease' is a key of this deployment (namespace 'prod'); a queue may not start with \"prod:\""),
        (EVERY + 'queue = "_kombu.binding.celery"', f"jobs.a.queue: '_kombu.binding.celery' {KOMBU}"),
        (EVERY + 'queue = "unacked"', f"jobs.a.queue: 'unacked' {KOMBU}"),
        (EVERY + 'queue = "unacked_index"', f"jobs.a.queue: 'unacked_index' {KOMBU}"),
        (EVERY + 'queue = "unacked_mutex"', f"jobs.a.queue: 'unacked_mutex' {KOMBU}"),
        (EVERY + 'queue = "celery\\u0006\\u00163"', "jobs.a.queue: 'celery\\x06\\x163' contains kombu's priority separator \\x06\\x16"),
        # Schedules that never fire, or that no one meant.
        (JOB + 'cron = "*/5 2 * 3 SUN#2"\ntimezone = "America/New_York"', "jobs.a.cron: never fires: in America/New_York every time it names falls in a daylight-saving gap, and a job with a wildcard minute or hour has no slots in a gap"),
        (JOB + 'cron = "*/99999999999999999999 * * * *"', 'jobs.a.cron: minute field: step 99999999999999999999 in "*/99999999999999999999" is longer than the range 0-59'),
        (JOB + 'cron = "0 0-5/99999999999999999999 * * *"', 'jobs.a.cron: hour field: step 99999999999999999999 in "0-5/99999999999999999999" is over 999'),
        (JOB + 'cron = "99999999999999999999 * * * *"', "jobs.a.cron: minute 99999999999999999999 is out of range 0-59"),
        (JOB + f'cron = "{"9" * 5000} * * * *"', "jobs.a.cron: cron text is 5008 characters long; at most 1000 are read"),
    ],
)  # fmt: skip
def test_each_hostile_value_is_its_one_exact_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, text), {})
    assert caught.value.problems == [f"scheduler.toml: {expected}"]


@pytest.mark.parametrize(
    "text",
    [
        '[scheduler]\nlease_ttl = "36525d"\n' + EVERY,  # the bound itself is allowed
        JOB + 'cron = "0 2 * 3 SUN#2"\ntimezone = "America/New_York"',  # fixed time: after the gap
        JOB + 'cron = "*/5 3 * 3 SUN#2"\ntimezone = "America/New_York"',  # just after the gap
        JOB + 'cron = "*/60 9-17/100 * * *"',  # cronie's long step after a range
        EVERY + "args = " + "[" * 32 + "]" * 32,
        EVERY + 'queue = "scheduler"\nkwargs = { x = 1.5, y = "inf" }',
        JOB + "at = 9999-12-31T23:59:59Z",
        JOB + "at = 0001-01-01T00:00:00Z",  # in the past: fired once, stays written down
    ],
)
def test_values_at_the_edges_are_accepted(tmp_path: Path, text: str) -> None:
    load_config(config_file(tmp_path, text), {})


def test_a_job_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, '[jobs."a\\nb"]\ntask = "t"\nevery = 5\n'), {})
    assert caught.value.problems == [
        "scheduler.toml: jobs.\"a\\nb\": job name may only use letters, digits, '_', '-', '.'"
    ]
