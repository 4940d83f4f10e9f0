"""Issue 12's job keys: what each accepts, the one line each refusal is, and that a job using
every key survives its fingerprint (config hash, drift, plan) and a rename."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.cli.history import definition
from scheduler.drift import compare, job_table, rebuild_job
from scheduler.jobspec import JobSpec, build_job
from scheduler.jobspec_options import ANY_2XX, HttpRequest, ShellOptions, Step

START = "2026-01-01T00:00:00Z"


def build(table: dict[str, Any]) -> tuple[JobSpec | None, list[str]]:
    problems: list[str] = []
    return build_job(Path("s.toml"), "j", table, ZoneInfo("UTC"), problems, "ns"), problems


def good(**table: Any) -> JobSpec:
    if not any(key in table for key in ("cron", "every", "at", "calendar")):
        table["every"] = "1m"
    if not any(key in table for key in ("task", "command", "http", "chain", "group")):
        table["task"] = "t.a"
    job, problems = build(table)
    assert job is not None, problems
    return job


EVERY_KEY = {
    "task-job": {"task": "x.y", "every": "1m", "routing_key": "rk", "exchange": "ex",
                 "priority": 9, "headers": {"tenant": ["a", 1]}, "expires": "next",
                 "soft_time_limit": 5, "time_limit": "10s", "ignore_result": True,
                 "jitter": "5s", "start": START, "end": "2027-01-01T00:00:00Z",
                 "max_runs": 3, "enabled": False},
    "chain": {"chain": [{"task": "a", "args": [4, 4]}, {"task": "b", "immutable": True}],
              "cron": "*/5 * * * *", "expires": 30},
    "group": {"group": [{"task": "a"}, {"task": "b", "kwargs": {"k": 1}}],
              "at": START},
    "command": {"command": ["pg_dump", "-f", "/tmp/x"], "cwd": "/tmp", "env": {"A": "b"},
                "timeout": "1m", "user": "nobody", "every": 60, "retries": 3,
                "retry_delay": "5s", "retry_backoff": True},
    "http": {"http": {"method": "POST", "url": "https://e.com/x", "headers": {"A": "b"},
                      "json": {"x": [1]}, "timeout": 3, "expect": [200, 204]}, "every": 60},
    "calendar": {"task": "t", "calendar": {"weeks": 2, "at": "09:00"}, "start": START,
                 "timezone": "Europe/Berlin", "max_runs": 4},
    "cron-max-runs": {"task": "t", "cron": "0 9 * * *", "start": START, "max_runs": 2},
}  # fmt: skip


@pytest.mark.parametrize("name", list(EVERY_KEY))
def test_a_fingerprint_rebuilds_the_same_job(name: str) -> None:
    job = good(**EVERY_KEY[name])
    fingerprint = job.fingerprint()
    problems: list[str] = []
    rebuilt = rebuild_job("j", job_table(fingerprint), "ns", problems)
    assert problems == []
    assert rebuilt is not None
    assert rebuilt.fingerprint() == fingerprint
    assert job.renamed("other").fingerprint() == fingerprint
    assert job.renamed("other").name == "other"


def test_a_job_without_options_keeps_its_old_fingerprint() -> None:
    assert list(good(task="t.a").fingerprint()) == [
        "task", "kind", "schedule", "timezone", "args", "kwargs", "queue", "catchup",
        "misfire_grace_s", "start", "overlap", "alert_after_s", "alert_task", "alert_webhook",
    ]  # fmt: skip


def test_each_option_is_in_the_fingerprint_and_the_drift() -> None:
    old = {"j": good(task="t.a").fingerprint()}
    new = {"j": good(task="t.a", priority=3, expires="30s", enabled=False).fingerprint()}
    (change,) = compare(old, new).changed
    assert [(c.field, c.old, c.new) for c in change.fields] == [
        ("enabled", None, False), ("priority", None, 3), ("expires", None, "30s"),
    ]  # fmt: skip


def test_the_values_land_in_the_job() -> None:
    job = good(**EVERY_KEY["task-job"])
    assert (job.routing_key, job.exchange, job.priority) == ("rk", "ex", 9)
    assert job.headers == {"tenant": ["a", 1]}
    assert job.expires == "next"
    assert (job.soft_time_limit, job.time_limit) == (timedelta(seconds=5), timedelta(seconds=10))
    assert (job.ignore_result, job.jitter, job.enabled) == (True, timedelta(seconds=5), False)
    assert job.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert (job.end, job.max_runs) == (datetime(2027, 1, 1, tzinfo=UTC), 3)
    # max_runs: the first 3 slots from start, then none.
    slots, slot = [], job.trigger.next_slot(datetime(2025, 1, 1, tzinfo=UTC))
    while slot is not None and len(slots) < 5:
        slots.append(slot)
        slot = job.trigger.next_slot(slot)
    assert [s.strftime("%H:%M") for s in slots] == ["00:00", "00:01", "00:02"]
    chain = good(**EVERY_KEY["chain"])
    assert (chain.compose, chain.task, chain.action) == ("chain", "a", "chain")
    assert chain.steps == (Step("a", (4, 4)), Step("b", (), {}, immutable=True))
    shell = good(**EVERY_KEY["command"])
    assert (shell.task, shell.command) == ("jobs.builtin.shell", ("pg_dump", "-f", "/tmp/x"))
    assert shell.shell == ShellOptions("/tmp", {"A": "b"}, timedelta(minutes=1), "nobody")
    assert (shell.retries, shell.retry_delay, shell.retry_backoff) == (
        3, timedelta(seconds=5), True,
    )  # fmt: skip
    http = good(http={"url": "https://e.com/x"})
    assert http.task == "jobs.builtin.http"
    assert http.http == HttpRequest("https://e.com/x", "GET", {}, None, timedelta(seconds=10))
    assert http.http.expect == ANY_2XX


W = "s.toml: jobs.j"
ERRORS = [
    ({"priority": 10}, f"{W}.priority: must be 0-9, got 10"),
    ({"priority": "high"}, f"{W}.priority: Input should be a valid integer"),
    ({"routing_key": " "}, f"{W}.routing_key: must not be empty, got ' '"),
    ({"headers": {"scheduler_x": 1}}, f'{W}.headers.scheduler_x: a header may not start with "scheduler_"'),
    ({"headers": {"eta": 1}}, f"{W}.headers.eta: is a header of Celery's own message protocol"),
    ({"headers": {"x": float("nan")}}, f"{W}.headers: headers.x is nan, which JSON cannot carry (no nan or inf)"),
    ({"expires": "0.5s"}, f"{W}.expires: must be at least 1s, got 500ms"),
    ({"expires": "later"}, f"{W}.expires: invalid duration 'later': use a number of seconds or units ms, s, m, h, d, w (e.g. \"90s\", \"1h30m\")"),
    ({"task": "t", "at": START, "expires": "next", "every": None}, f'{W}.expires: an `at` job has no next slot for "next" to name'),
    ({"soft_time_limit": 10, "time_limit": 5}, f"{W}.soft_time_limit: must be shorter than time_limit (10s >= 5s)"),
    ({"time_limit": 0}, f"{W}.time_limit: must be at least 1s, got 0s"),
    ({"ignore_result": "yes"}, f"{W}.ignore_result: Input should be a valid boolean"),
    ({"jitter": "1m"}, f"{W}.jitter: must be shorter than the interval (1m >= 1m)"),
    ({"jitter": -1}, f"{W}.jitter: duration must not be negative, got -1"),
    ({"jitter": "1500ms"}, f"{W}.jitter: must be whole seconds (slots are), got 1500ms"),
    ({"max_runs": 2}, f"{W}.max_runs: needs a start (it counts the slots from start)"),
    ({"max_runs": 0, "start": START}, f"{W}.max_runs: must be at least 1, got 0"),
    ({"end": "2025-01-01T00:00:00Z", "start": START}, f"{W}.end: must be after start (2025-01-01T00:00:00+00:00 <= 2026-01-01T00:00:00+00:00)"),
    ({"end": "soon"}, f"{W}.end: expected an ISO 8601 instant like 2026-12-01T09:00:00+01:00, got 'soon'"),
    ({"enabled": "no"}, f"{W}.enabled: Input should be a valid boolean"),
    ({"command": ["a"]}, f"{W}: needs exactly one of task, command, http, chain, group (found task, command)"),
    ({"task": None, "chain": []}, f"{W}.chain: needs 1 to 100 steps, got 0"),
    ({"task": None, "chain": [{"task": "a"}] * 101}, f"{W}.chain: needs 1 to 100 steps, got 101"),
    ({"task": None, "chain": [{"args": [1]}]}, f"{W}.chain[0].task: missing (required)"),
    ({"task": None, "chain": ["a"]}, f"{W}.chain[0]: expected a table like {{ task = \"x\" }}, got 'a'"),
    ({"task": None, "chain": [{"task": "a", "args": 1}]}, f"{W}.chain[0].args: expected a list, got 1"),
    ({"task": None, "chain": [{"task": "a", "immutable": 1}]}, f"{W}.chain[0].immutable: expected true or false, got 1"),
    ({"task": None, "group": [{"task": "a", "immutable": True}]}, f"{W}.group[0].immutable: unknown key (a group step has task, args, kwargs)"),
    ({"task": None, "group": [{"task": " "}]}, f"{W}.group[0].task: must name a Celery task, got ' '"),
    ({"task": None, "command": []}, f'{W}.command: expected a program and its arguments like ["pg_dump", "-f", "x"]'),
    ({"task": None, "command": ["ls", 1]}, f"{W}.command.1: Input should be a valid string"),
    ({"task": None, "command": ["ls"], "cwd": "tmp"}, f"{W}.cwd: must be an absolute path, got 'tmp'"),
    ({"task": None, "command": ["ls"], "env": {"A=B": "x"}}, f"{W}.env: 'A=B' is no environment variable name"),
    ({"task": None, "command": ["ls"], "timeout": "0s"}, f"{W}.timeout: must be at least 1s, got 0s"),
    ({"task": None, "command": ["ls"], "user": ""}, f"{W}.user: must name a user, got ''"),
    ({"cwd": "/tmp"}, f"{W}.cwd: only a `command` job has a cwd"),
    ({"task": None, "command": ["ls"], "args": [1]}, f"{W}.args: only a `task` job has args (a command job has none)"),
    ({"task": None, "http": {}}, f"{W}.http.url: missing (required), an http:// or https:// URL"),
    ({"task": None, "http": {"url": "ftp://x"}}, f"{W}.http.url: expected an http:// or https:// URL, got 'ftp://x'"),
    ({"task": None, "http": {"url": "http://x", "method": "GET2"}}, f"{W}.http.method: expected one of GET, POST, PUT, PATCH, DELETE, HEAD, got 'GET2'"),
    ({"task": None, "http": {"url": "http://x", "expect": [99]}}, f"{W}.http.expect: expected a list of status codes 100-599, got [99]"),
    ({"task": None, "http": {"url": "http://x", "headers": {"A": 1}}}, f"{W}.http.headers: expected a table of strings, got {{'A': 1}}"),
    ({"task": None, "http": {"url": "http://x", "timeout": "0s"}}, f"{W}.http.timeout: must be at least 1s, got 0s"),
    ({"task": None, "http": {"url": "http://x", "body": "x"}}, f"{W}.http.body: unknown key (an http table has method, url, headers, json, timeout, expect)"),
    ({"retries": 2}, f"{W}.retries: only a command or http job is retried by the scheduler's built-in task (a Celery task retries itself)"),
    ({"task": None, "command": ["ls"], "retries": 101}, f"{W}.retries: must be 0-100, got 101"),
    ({"task": None, "command": ["ls"], "retry_delay": "x"}, f"{W}.retry_delay: invalid duration 'x': use a number of seconds or units ms, s, m, h, d, w (e.g. \"90s\", \"1h30m\")"),
    ({"every": None, "calendar": {"days": 1}}, f"{W}.start: a calendar job needs a start (its first day)"),
    ({"every": None, "calendar": {"days": 0}, "start": START}, f"{W}.calendar: days must be a whole number >= 1, got 0"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "line"), ERRORS, ids=[e[1][len(W) :][:60] for e in ERRORS])
def test_each_refusal_is_one_line(change: dict[str, Any], line: str) -> None:
    table = {"task": "t.a", "every": "1m", **change}
    job, problems = build({k: v for k, v in table.items() if v is not None})
    assert job is None
    assert problems == [line]


def test_a_start_bounds_a_cron_job_from_below() -> None:
    job = good(task="t", cron="0 9 * * *", start="2027-03-01T00:00:00Z")
    first = job.trigger.next_slot(datetime(2026, 1, 1, tzinfo=UTC))
    assert first == datetime(2027, 3, 1, 9, tzinfo=UTC)
    assert job.trigger.previous_slot(datetime(2027, 2, 1, tzinfo=UTC)) is None


def test_an_h_cron_job_agrees_on_its_resolved_text() -> None:
    hashed = good(task="t", cron="H H * * *").fingerprint()
    resolved = hashed["cron_hashed"]
    assert resolved != "H H * * *"
    assert len(resolved.split()) == 5
    assert all(field.isdigit() for field in resolved.split()[:2])
    assert "cron_hashed" not in good(task="t", cron="0 9 * * *").fingerprint()
    rebuilt = rebuild_job("j", hashed, "ns", problems := [])
    assert problems == []
    assert rebuilt is not None
    assert rebuilt.fingerprint() == hashed


def test_a_calendar_starts_on_a_day_read_at_local_midnight() -> None:
    job = good(task="t", calendar={"weeks": 2, "at": "09:00"}, start=date(2026, 1, 5),
               timezone="Europe/Berlin")  # fmt: skip
    assert job.start == datetime(2026, 1, 4, 23, tzinfo=UTC)
    first = job.trigger.next_slot(datetime(2026, 1, 1, tzinfo=UTC))
    assert first == datetime(2026, 1, 5, 8, tzinfo=UTC)  # 09:00 in Berlin
    assert job.trigger.next_slot(first) == datetime(2026, 1, 19, 8, tzinfo=UTC)


def test_jobs_show_writes_the_options_as_the_config_does() -> None:
    job = good(command=["/bin/echo", "hi"], cwd="/tmp", timeout="30s", cron="0 3 * * *",
               jitter="5m", expires="next", priority=5)  # fmt: skip
    shown = definition(job)
    assert shown["task"] == "jobs.builtin.shell"
    assert (shown["command"], shown["cwd"], shown["timeout"]) == (
        ["/bin/echo", "hi"],
        "/tmp",
        "30s",
    )
    assert (shown["jitter"], shown["expires"], shown["priority"]) == ("5m", "next", 5)
    assert "routing_key" not in shown  # unset options are left out
