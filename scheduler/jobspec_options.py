"""What a job sends besides its task: composed steps, a shell command, an HTTP request, the
message options (headers, priority, expiry, limits) and retries. Pure validation.

Each reader takes the raw value of one key, appends one line per problem (naming file, job
and field through `where`) and returns the validated value, or None when it found a problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from scheduler.durations import format_duration, parse_duration, shown

JOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def name_in_json(name: str) -> str:
    """`name` as it reads inside a JSON string (json.dumps without the quotes); a valid job
    name needs no escape, so the common case costs no encoder."""
    return name if JOB_NAME.fullmatch(name) else json.dumps(name)[1:-1]


# Far deeper than any task's arguments, and far shallower than the recursion limit of the
# JSON encoder, the config hash and the worker's decoder.
MAX_JSON_DEPTH = 32
_JSON_WORDS = "strings, numbers, booleans, lists, tables"


def json_problem(value: object, field_name: str) -> str | None:
    """Why ``value`` cannot travel as JSON in a task message (naming where inside it), or None.

    Walked with a stack, not recursion, so a deep value is measured rather than crashing us.
    """
    if not value:
        return None  # most jobs: no args, no kwargs
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass  # the walk below says where and why
    else:
        # Fewer brackets than the bound: shallow enough, with no walk (~1 us a job).
        if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
            return None
    stack: list[tuple[object, str, int]] = [(value, field_name, 0)]
    while stack:
        item, place, depth = stack.pop()
        if isinstance(item, str | bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{place} is {item!r}, which JSON cannot carry (no nan or inf)"
            continue
        if isinstance(item, list | tuple | dict):
            if depth == MAX_JSON_DEPTH:
                return f"nested deeper than {MAX_JSON_DEPTH} lists or tables (at {place})"
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        return f"values must be JSON ({_JSON_WORDS}); {place} has key {key!r}"
                children = [(v, f"{place}.{name_in_json(k)}", depth + 1) for k, v in item.items()]
            else:
                children = [(v, f"{place}[{i}]", depth + 1) for i, v in enumerate(item)]
            stack.extend(reversed(children))
            continue
        kind = type(item).__name__
        return f"values must be JSON ({_JSON_WORDS}); {place} is a {kind}: {shown(item)}"
    return None


def webhook_problem(url: str) -> str | None:
    """Why `url` cannot be an alert webhook, or None: an absolute http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {shown(url)}"
    if any(not c.isprintable() or c.isspace() for c in url):
        return f"a URL may not contain blanks or control characters, got {shown(url)}"
    return None


Compose = Literal["chain", "group"]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
ANY_2XX = tuple(range(200, 300))
DEFAULT_HTTP_TIMEOUT = timedelta(seconds=10)
MAX_STEPS = 100
MAX_RETRIES = 100
# Celery's own protocol 2 headers (celery/app/amqp.py as_task_v2): a job's header by one of
# these names would change what the worker does with the message, not just what it reads.
CELERY_HEADERS = frozenset({
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps",
})  # fmt: skip
OUR_HEADER_PREFIX = "scheduler_"


@dataclass(frozen=True, slots=True)
class Step:
    """One task of a chain or a group; `immutable` (chain only): Celery's `si`, which does
    not receive the previous step's result."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False

    def table(self, compose: Compose) -> dict[str, Any]:
        """The step as a config writes it (a group's steps have no `immutable`)."""
        written: dict[str, Any] = {"task": self.task}
        if self.args:
            written["args"] = list(self.args)
        if self.kwargs:
            written["kwargs"] = dict(self.kwargs)
        if compose == "chain" and self.immutable:
            written["immutable"] = True
        return written


@dataclass(frozen=True, slots=True)
class ShellOptions:
    """How `jobs.builtin.shell` runs a job's command: no shell, argv as written."""

    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: timedelta | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What `jobs.builtin.http` sends; a status outside `expect` is a failed run."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    timeout: timedelta = DEFAULT_HTTP_TIMEOUT
    expect: tuple[int, ...] = ANY_2XX

    def table(self) -> dict[str, Any]:
        """The request as a config writes it, defaults left out."""
        written: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.headers:
            written["headers"] = dict(self.headers)
        if self.json is not None:
            written["json"] = self.json
        if self.timeout != DEFAULT_HTTP_TIMEOUT:
            written["timeout"] = self.timeout.total_seconds()
        if self.expect != ANY_2XX:
            written["expect"] = list(self.expect)
        return written


def read_duration(
    value: object, where: str, problems: list[str], minimum: timedelta = timedelta(0)
) -> timedelta | None:
    """A duration of at least `minimum`, or None with the problem appended."""
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if duration < minimum:
        wanted, got = format_duration(minimum), format_duration(duration)
        problems.append(f"{where}: must be at least {wanted}, got {got}")
        return None
    return duration


def read_headers(value: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Extra message headers: never ours (scheduler_*) and never Celery's own."""
    before = len(problems)
    for name in value:
        if name.startswith(OUR_HEADER_PREFIX):
            problems.append(f'{where}.{name}: a header may not start with "{OUR_HEADER_PREFIX}"')
        elif name in CELERY_HEADERS:
            problems.append(f"{where}.{name}: is a header of Celery's own message protocol")
        elif not name.strip():
            problems.append(f"{where}: a header needs a name, got {shown(name)}")
    wrong = json_problem(dict(value), "headers")
    if wrong is not None:
        problems.append(f"{where}: {wrong}")
    return dict(value) if len(problems) == before else {}


def _task_name(value: object, where: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must name a Celery task, got {shown(value)}")
        return ""
    return value


def read_steps(
    value: list[Any], compose: Compose, where: str, problems: list[str]
) -> tuple[Step, ...]:
    """A chain's or a group's steps: 1 to 100 tables of task, args, kwargs (and immutable)."""
    if not 1 <= len(value) <= MAX_STEPS:
        problems.append(f"{where}: needs 1 to {MAX_STEPS} steps, got {len(value)}")
        return ()
    allowed = (
        ("task", "args", "kwargs", "immutable")
        if compose == "chain"
        else ("task", "args", "kwargs")
    )
    steps = []
    before = len(problems)
    for index, item in enumerate(value):
        place = f"{where}[{index}]"
        if not isinstance(item, dict):
            problems.append(f'{place}: expected a table like {{ task = "x" }}, got {shown(item)}')
            continue
        unknown = [key for key in item if key not in allowed]
        if unknown:
            problems.append(
                f"{place}.{unknown[0]}: unknown key (a {compose} step has {', '.join(allowed)})"
            )
            continue
        if "task" not in item:
            problems.append(f"{place}.task: missing (required)")
            continue
        task = _task_name(item["task"], f"{place}.task", problems)
        args, kwargs = item.get("args", []), item.get("kwargs", {})
        immutable = item.get("immutable", False)
        if not isinstance(args, list):
            problems.append(f"{place}.args: expected a list, got {shown(args)}")
        elif not isinstance(kwargs, dict):
            problems.append(f"{place}.kwargs: expected a table, got {shown(kwargs)}")
        elif not isinstance(immutable, bool):
            problems.append(f"{place}.immutable: expected true or false, got {shown(immutable)}")
        else:
            for key, part in (("args", args), ("kwargs", kwargs)):
                wrong = json_problem(part, key)
                if wrong is not None:
                    problems.append(f"{place}.{key}: {wrong}")
            steps.append(Step(task, tuple(args), dict(kwargs), immutable))
    return tuple(steps) if len(problems) == before else ()


def read_command(value: list[str], where: str, problems: list[str]) -> tuple[str, ...]:
    """argv of a shell job: at least the program, no empty program name."""
    if not value or not value[0].strip():
        problems.append(
            f'{where}: expected a program and its arguments like ["pg_dump", "-f", "x"]'
        )
        return ()
    if any("\x00" in part for part in value):
        problems.append(f"{where}: an argument may not contain a NUL character")
        return ()
    return tuple(value)


def read_shell(
    cwd: str | None,
    env: Mapping[str, str] | None,
    timeout: object,
    user: str | None,
    where: str,
    problems: list[str],
) -> ShellOptions:
    if cwd is not None and not cwd.startswith("/"):
        problems.append(f"{where}.cwd: must be an absolute path, got {shown(cwd)}")
    for name in env or {}:
        if not name or "=" in name or "\x00" in name:
            problems.append(f"{where}.env: {shown(name)} is no environment variable name")
    limit = None
    if timeout is not None:
        limit = read_duration(timeout, f"{where}.timeout", problems, timedelta(seconds=1))
    if user is not None and not user.strip():
        problems.append(f"{where}.user: must name a user, got {shown(user)}")
    return ShellOptions(cwd, dict(env or {}), limit, user)


def read_http(value: Mapping[str, Any], where: str, problems: list[str]) -> HttpRequest | None:
    """An http job's request table."""
    before = len(problems)
    keys = ("method", "url", "headers", "json", "timeout", "expect")
    for key in value:
        if key not in keys:
            problems.append(f"{where}.{key}: unknown key (an http table has {', '.join(keys)})")
    method = value.get("method", "GET")
    if method not in HTTP_METHODS:
        problems.append(
            f"{where}.method: expected one of {', '.join(HTTP_METHODS)}, got {shown(method)}"
        )
    url = value.get("url")
    if not isinstance(url, str):
        problems.append(f"{where}.url: missing (required), an http:// or https:// URL")
    else:
        wrong = webhook_problem(url)
        if wrong is not None:
            problems.append(f"{where}.url: {wrong}")
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(f"{where}.headers: expected a table of strings, got {shown(headers)}")
    body = value.get("json")
    wrong_json = json_problem(body, "json")
    if wrong_json is not None:
        problems.append(f"{where}.json: {wrong_json}")
    timeout = read_duration(
        value.get("timeout", 10), f"{where}.timeout", problems, timedelta(seconds=1)
    )
    expect = value.get("expect", list(ANY_2XX))
    if (
        not isinstance(expect, list)
        or not expect
        or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in expect
        )
    ):
        problems.append(
            f"{where}.expect: expected a list of status codes 100-599, got {shown(expect)}"
        )
    if len(problems) > before or timeout is None:
        return None
    assert isinstance(url, str)
    assert isinstance(method, str)
    return HttpRequest(url, method, dict(headers), body, timeout, tuple(expect))


def read_options(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    """The message options and retries of a validated job table (`_JobTable`), as JobSpec
    fields; the schedule-dependent checks (jitter, max_runs, end) are the caller's."""
    found: dict[str, Any] = {}
    for key in ("routing_key", "exchange"):
        text = getattr(raw, key)
        if text is not None and not text.strip():
            problems.append(f"{where}.{key}: must not be empty, got {shown(text)}")
        found[key] = text
    if raw.priority is not None and not 0 <= raw.priority <= 9:
        problems.append(f"{where}.priority: must be 0-9, got {raw.priority}")
    found["priority"] = raw.priority
    found["headers"] = read_headers(raw.headers, f"{where}.headers", problems)
    expires: timedelta | str | None = None
    if raw.expires == "next":
        expires = "next"
    elif raw.expires is not None:
        expires = read_duration(raw.expires, f"{where}.expires", problems, timedelta(seconds=1))
    found["expires"] = expires
    limits = {}
    for key in ("soft_time_limit", "time_limit"):
        value = getattr(raw, key)
        limits[key] = (
            None
            if value is None
            else read_duration(value, f"{where}.{key}", problems, timedelta(seconds=1))
        )
    soft, hard = limits["soft_time_limit"], limits["time_limit"]
    if soft is not None and hard is not None and soft >= hard:
        problems.append(
            f"{where}.soft_time_limit: must be shorter than time_limit "
            f"({format_duration(soft)} >= {format_duration(hard)})"
        )
    found.update(limits)
    found["ignore_result"] = raw.ignore_result
    found["jitter"] = (
        None if raw.jitter is None else read_duration(raw.jitter, f"{where}.jitter", problems)
    )
    found["enabled"] = raw.enabled
    if not 0 <= raw.retries <= MAX_RETRIES:
        problems.append(f"{where}.retries: must be 0-{MAX_RETRIES}, got {raw.retries}")
    found["retries"] = raw.retries
    found["retry_delay"] = read_duration(
        raw.retry_delay, f"{where}.retry_delay", problems
    ) or timedelta(0)
    found["retry_backoff"] = raw.retry_backoff
    return found
