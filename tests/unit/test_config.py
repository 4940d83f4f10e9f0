"""Config files: what is accepted, and the one-line error for each kind of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.connections import redact_url
from scheduler.errors import ConfigError
from tests.configs import config_file

GOOD = """
[scheduler]
redis_url = "redis://127.0.0.1:6379/0"
namespace = "prod"
timezone  = "Europe/Berlin"
lease_ttl = "2s"

[jobs.cleanup]
task     = "jobs.examples.cleanup"
cron     = "*/5 * * * *"
timezone = "America/New_York"
args     = [1, 2]
kwargs   = { dry_run = false }
queue    = "maintenance"
catchup  = "latest"
misfire_grace = "10m"

[jobs.heartbeat]
task  = "jobs.examples.ping"
every = "30s"
start = 2026-01-01T00:00:00Z

[jobs.report]
task = "jobs.examples.report"
at   = 2026-12-01T09:00:00+01:00

[jobs.local]
task = "t"
at   = 2026-12-01T09:00:00
"""


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, text), env or {})
    return caught.value.problems


def test_a_good_config_reads_into_records(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, GOOD), {})
    assert config.scheduler.namespace == "prod"
    assert config.scheduler.lease_ttl == timedelta(seconds=2)
    assert config.scheduler.effective_broker_url == "redis://127.0.0.1:6379/0"
    cleanup = config.jobs["cleanup"]
    assert (cleanup.kind, cleanup.schedule, cleanup.timezone.key) == (
        "cron",
        "*/5 * * * *",
        "America/New_York",
    )
    assert cleanup.args == (1, 2)
    assert cleanup.kwargs == {"dry_run": False}
    assert (cleanup.queue, cleanup.catchup, cleanup.misfire_grace) == (
        "maintenance",
        "latest",
        timedelta(minutes=10),
    )
    assert config.jobs["heartbeat"].trigger.next_slot(
        datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    ) == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert config.jobs["report"].trigger.next_slot(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    # A local datetime is read in the job's zone (here the default, Europe/Berlin).
    assert config.jobs["local"].trigger.next_slot(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )


def test_the_hash_is_stable_and_follows_the_jobs(tmp_path: Path) -> None:
    first = load_config(config_file(tmp_path, GOOD), {}).hash
    assert load_config(config_file(tmp_path, GOOD), {}).hash == first
    changed = GOOD.replace('every = "30s"', 'every = "31s"')
    assert load_config(config_file(tmp_path, changed), {}).hash != first


def test_environment_overrides_the_scheduler_table(tmp_path: Path) -> None:
    env = {
        "SCHEDULER_REDIS_URL": "redis://10.0.0.9:6379/2",
        "SCHEDULER_NAMESPACE": "staging",
        "SCHEDULER_LEASE_TTL": "1500ms",
    }
    config = load_config(config_file(tmp_path, GOOD), env)
    assert config.scheduler.redis_url == "redis://10.0.0.9:6379/2"
    assert config.scheduler.effective_broker_url == "redis://10.0.0.9:6379/2"
    assert config.scheduler.namespace == "staging"
    assert config.scheduler.lease_ttl == timedelta(milliseconds=1500)


def test_includes_add_jobs_relative_to_the_main_file(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    config_file(tmp_path, '[jobs.extra]\ntask = "t"\nevery = 5\n', "jobs.d/extra.toml")
    main = config_file(tmp_path, '[scheduler]\ninclude = ["jobs.d/*.toml"]\n')
    assert list(load_config(main, {}).jobs) == ["extra"]


JOB = '[jobs.cleanup]\ntask = "t"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (JOB + 'cron = "0 0 * * 8"', "scheduler.toml: jobs.cleanup.cron: day-of-week 8 is out of range 0-7"),
        (JOB + 'cron = "0 0 30 2 *"', "scheduler.toml: jobs.cleanup.cron: never fires (day-of-month 30 never occurs in February)"),
        (JOB + 'cron = "5/10 * * * *"', 'scheduler.toml: jobs.cleanup.cron: minute field: step without a range ("5/10"); write "5-59/10" or "*/10"'),
        (JOB + 'crn = "* * * * *"', "scheduler.toml: jobs.cleanup.crn: unknown key"),
        (JOB, "scheduler.toml: jobs.cleanup: needs exactly one of cron, every, at (found none)"),
        (JOB + 'cron = "* * * * *"\nevery = 5', "scheduler.toml: jobs.cleanup: needs exactly one of cron, every, at (found cron, every)"),
        ('[jobs.cleanup]\nevery = 5', "scheduler.toml: jobs.cleanup.task: missing (required)"),
        (JOB + 'every = "1.5s"', "scheduler.toml: jobs.cleanup.every: must be whole seconds, at least 1s, got '1.5s'"),
        (JOB + "every = 0", "scheduler.toml: jobs.cleanup.every: must be whole seconds, at least 1s, got 0"),
        (JOB + 'every = "5 minutes"', "scheduler.toml: jobs.cleanup.every: invalid duration '5 minutes'"),
        (JOB + 'every = 5\ntimezone = "Mars/Olympus"', "scheduler.toml: jobs.cleanup.timezone: unknown time zone 'Mars/Olympus'"),
        (JOB + 'every = 5\ncatchup = "some"', "scheduler.toml: jobs.cleanup.catchup: Input should be 'all', 'latest' or 'none', got 'some'"),
        (JOB + 'every = 5\nmisfire_grace = "soon"', "scheduler.toml: jobs.cleanup.misfire_grace: invalid duration 'soon'"),
        (JOB + 'every = 5\nargs = "x"', "scheduler.toml: jobs.cleanup.args: Input should be a valid list"),
        (JOB + "every = 5\nargs = [2026-01-01T00:00:00Z]", "scheduler.toml: jobs.cleanup.args: values must be JSON"),
        (JOB + 'at = "next tuesday"', "scheduler.toml: jobs.cleanup.at: expected an ISO 8601 instant"),
        (JOB + 'cron = "@daily"\nstart = "soon"', "scheduler.toml: jobs.cleanup.start: expected an ISO 8601 instant like 2026-12-01T09:00:00+01:00, got 'soon'"),
        ('[jobs."bad name"]\ntask = "t"\nevery = 5', "scheduler.toml: jobs.\"bad name\": job name may only use letters, digits, '_', '-', '.'"),
        ('[scheduler]\nredis_url = "localhost"', "scheduler.toml: scheduler.redis_url: expected a URL like redis://host:6379/0 (value not shown)"),
        ('[scheduler]\nlease_tll = "2s"', "scheduler.toml: scheduler.lease_tll: unknown key"),
        ('[scheduler]\nlease_ttl = "100ms"', "scheduler.toml: scheduler.lease_ttl: must be at least 300ms, got 100ms"),
        ('[scheduler]\nresult_backend = "sqlite.db"', 'scheduler.toml: scheduler.result_backend: expected a result store URL like "redis://host:6379/1" or "db+sqlite:///var/lib/scheduler/results.db" (value not shown)'),
        ('[scheduler]\nresult_expires = "soon"', "scheduler.toml: scheduler.result_expires: invalid duration 'soon'"),
        ('[scheduler]\ntimezone = "Nowhere"', "scheduler.toml: scheduler.timezone: unknown time zone 'Nowhere'"),
        ("[schedular]\n", "scheduler.toml: schedular: unknown table (expected [scheduler] or [jobs.*])"),
        ('[scheduler]\ninclude = ["missing.toml"]', "scheduler.toml: scheduler.include: no file matches 'missing.toml'"),
        ("[jobs.a]\ntask = \"t\"\nevery = 5\n[jobs.a.b]\nx = 1", "scheduler.toml: jobs.a.b: unknown key"),
        ('[jobs.a]\ntask = "t"\nevery = 5\ncron = ', "scheduler.toml: line 4, at its end: Invalid value"),
        ('[jobs.a]\ntask = "t"\nevery = 5\ncron = [\n[x]', "scheduler.toml: line 5, column 2: Invalid"),
    ],
)  # fmt: skip
def test_each_problem_is_one_line_naming_file_job_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]
    assert "\n" not in found[0]
    assert "Traceback" not in found[0]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = '[jobs.a]\ntask = "t"\ncron = "61 * * * *"\n[jobs.b]\ntask = "t"\nevery = -1\n'
    found = problems(tmp_path, text)
    assert [line.split(":")[1].strip() for line in found] == ["jobs.a.cron", "jobs.b.every"]


def test_a_job_defined_twice_names_both_files(tmp_path: Path) -> None:
    config_file(tmp_path, '[jobs.a]\ntask = "t"\nevery = 5\n', "more.toml")
    text = '[scheduler]\ninclude = ["more.toml"]\n[jobs.a]\ntask = "t"\nevery = 5\n'
    assert problems(tmp_path, text) == ["more.toml: jobs.a: defined twice (also in scheduler.toml)"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml", {})
    assert caught.value.problems == [f"{tmp_path / 'nope.toml'}: no such config file"]


def test_bad_environment_override_names_the_key(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD, {"SCHEDULER_LEASE_TTL": "forever"})
    assert found == [
        "SCHEDULER_LEASE_TTL: invalid duration 'forever': use a number of "
        'seconds or units ms, s, m, h, d, w (e.g. "90s", "1h30m")'
    ]


def test_password_comes_from_a_file_and_never_from_the_config_alone(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("s3cr:t/\n")
    env = {"SCHEDULER_REDIS_PASSWORD_FILE": str(secret)}
    config = load_config(
        config_file(tmp_path, '[scheduler]\nredis_url = "redis://app@h:6380/1"\n'), env
    )
    assert config.scheduler.redis_url == "redis://app:s3cr%3At%2F@h:6380/1"
    assert config.scheduler.effective_broker_url == config.scheduler.redis_url


def test_password_from_the_environment(tmp_path: Path) -> None:
    env = {"SCHEDULER_REDIS_PASSWORD": "pw"}
    config = load_config(
        config_file(tmp_path, '[scheduler]\nredis_url = "redis://h:6379/0"\n'), env
    )
    assert config.scheduler.redis_url == "redis://:pw@h:6379/0"


def test_unreadable_password_file_is_named(tmp_path: Path) -> None:
    env = {"SCHEDULER_REDIS_PASSWORD_FILE": str(tmp_path / "none")}
    assert problems(tmp_path, "[scheduler]\n", env) == [
        f"SCHEDULER_REDIS_PASSWORD_FILE: {tmp_path / 'none'}: no such password file"
    ]


def test_passwords_are_redacted_for_logs_and_status() -> None:
    assert redact_url("redis://app:s3cret@h:6380/1") == "redis://app:***@h:6380/1"
    assert redact_url("amqp://guest:guest@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_jobs_that_differ_only_in_name_share_one_validation(tmp_path: Path) -> None:
    table = 'task = "t"\ncron = "*/5 * * * *"\nargs = [1]\n'
    text = (
        "".join(f"[jobs.j{i}]\n{table}" for i in range(3))
        + '[jobs.h]\ntask = "t"\ncron = "H * * * *"\n'
    )
    config = load_config(config_file(tmp_path, text), {})
    first, second = config.jobs["j0"], config.jobs["j1"]
    assert (first.name, second.name) == ("j0", "j1")
    assert second.trigger is first.trigger
    assert second.fingerprint() == first.fingerprint()
    # H depends on the name: that job is validated on its own.
    assert config.jobs["h"].schedule == "H * * * *"


def test_the_hash_names_each_job(tmp_path: Path) -> None:
    one = load_config(config_file(tmp_path, '[jobs.a]\ntask = "t"\nevery = 5\n'), {}).hash
    other = load_config(config_file(tmp_path, '[jobs.b]\ntask = "t"\nevery = 5\n'), {}).hash
    assert one != other


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.toml"
    path.write_bytes(b'[jobs.a]\ntask = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.problems == [
        "scheduler.toml: not UTF-8 text (invalid start byte at byte 17)"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://[::1", "an IPv6 host is written in brackets: redis://[::1]:6379/0"),
        ("redis://h:99999/0", "port '99999' is not a number 1-65535"),
        ("redis://:6379/0", "no host: write redis://host:port/..."),
        ("redis://h/x", "database 'x' is not a number (0, 1, ...)"),
        ("mysql://h/0", "unknown scheme 'mysql'"),
        ("redis://app:s3/cr3t@h:6379/0", "the user name or password holds an unencoded"),
        ("s3cr3t", "expected a URL like redis://host:6379/0 (value not shown)"),
    ],
)
def test_a_url_every_client_would_fail_on_is_refused_at_validation(
    tmp_path: Path, url: str, message: str
) -> None:
    for key in ("redis_url", "broker_url"):
        [line] = problems(tmp_path, f'[scheduler]\n{key} = "{url}"\n')
        assert line.startswith(f"scheduler.toml: scheduler.{key}: {message}"), line
        assert "cr3t" not in line
