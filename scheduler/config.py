"""The TOML config, read once into frozen, validated records.

Every problem is reported as one line naming file, job and field
(``scheduler.toml: jobs.cleanup.cron: day-of-week 8 is out of range 0-7``), all problems at
once, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import gc
import glob
import hashlib
import json
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import rtoml
from pydantic import ConfigDict, Field, ValidationError, field_validator

from scheduler.connections import check_url, listen_address, same_redis, with_password
from scheduler.durations import format_duration, parse_duration
from scheduler.errors import ConfigError
from scheduler.files import (
    CONFIG_MAX_BYTES,
    SECRET_MAX_BYTES,
    FileProblem,
    read_bounded,
    read_text_bounded,
)
from scheduler.jobspec import (
    JOB_NAME,
    JobSpec,
    Strict,
    build_job,
    name_in_json,
    read_zone,
    validation_lines,
    webhook_problem,
)
from scheduler.message_key import load_key

DEFAULT_CONFIG_PATH = Path("/etc/scheduler/scheduler.toml")


class SchedulerSettings(Strict):
    """The ``[scheduler]`` table: where state lives and how leadership behaves."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""  # empty means: the same as redis_url
    namespace: str = "scheduler"
    timezone: zoneinfo.ZoneInfo = zoneinfo.ZoneInfo("UTC")
    lease_ttl: timedelta = timedelta(seconds=1.5)
    max_clock_offset: timedelta = timedelta(seconds=1)
    # Claimed slots waiting for a broker other than this Redis; when full, the leader stops
    # claiming and records the slots as missed ranges instead.
    outbox_max: int = Field(default=10_000, ge=1)
    include: tuple[str, ...] = ()
    # Secrets stay out of the config file: SCHEDULER_REDIS_PASSWORD, or a file (systemd's
    # LoadCredential=) named by SCHEDULER_REDIS_PASSWORD_FILE. Used by redis_url, and by the
    # broker when broker_url is left to default to redis_url.
    redis_password: str = ""
    redis_password_file: str = ""
    # A secret key (a file, e.g. from systemd's LoadCredential=): with it every message is
    # signed and the worker hook refuses unsigned or mis-signed ones (docs/guarantees.md).
    message_key_file: str = ""
    broker_transport_options: dict[str, Any] = Field(default_factory=dict)
    # What workers report about each run is kept per job, in one capped stream each: at most
    # this many entries, none older than history_ttl.
    history_max: int = Field(default=1000, ge=1, le=1_000_000)
    history_ttl: timedelta = timedelta(days=7)
    # Where the dead man's switch reports a job that stopped succeeding (each job's
    # alert_task / alert_webhook, when set, takes precedence).
    alert_task: str = ""
    alert_webhook: str = ""
    # HTTP listener for /metrics, /healthz, /readyz and the status page: "host:port" (a bare
    # port listens on loopback only); off when empty.
    http_listen: str = ""
    # Per-job metric series (next fire, last success, ...) for at most this many jobs; the
    # totals are always exported, so 100,000 jobs do not make 100,000 series per metric.
    metrics_jobs_max: int = Field(default=1000, ge=0, le=1_000_000)
    # Where workers keep task results (Celery's result_backend): empty means the state Redis;
    # "db+sqlite:///path" or another SQLAlchemy URL keeps them in a database. Results expire
    # after result_expires, so a job that runs every second does not fill the store.
    result_backend: str = ""
    result_expires: timedelta = timedelta(days=1)

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("timezone", mode="before")
    @classmethod
    def _readread_zone(cls, value: object) -> zoneinfo.ZoneInfo:
        return value if isinstance(value, zoneinfo.ZoneInfo) else read_zone(value)

    @field_validator(
        "lease_ttl", "max_clock_offset", "history_ttl", "result_expires", mode="before"
    )
    @classmethod
    def _read_duration(cls, value: object) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)

    @field_validator("lease_ttl")
    @classmethod
    def _lease_long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=300):
            raise ValueError(f"must be at least 300ms, got {format_duration(value)}")
        return value

    @field_validator("history_ttl")
    @classmethod
    def _history_long_enough(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError(f"must be at least 1m, got {format_duration(value)}")
        return value

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        wrong = webhook_problem(value) if value else None
        if wrong is not None:
            raise ValueError(wrong)
        return value

    @field_validator("result_backend")
    @classmethod
    def _result_store(cls, value: str) -> str:
        # Celery names its backends by URL scheme (redis://, db+sqlite:///...): a typo would
        # only surface when a worker starts, far from the file.
        if value and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S*", value):
            raise ValueError(
                'expected a result store URL like "redis://host:6379/1" or '
                '"db+sqlite:///var/lib/scheduler/results.db" (value not shown)'
            )
        return value

    @field_validator("http_listen")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        if value:
            listen_address(value)  # its ValueError says what is wrong
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace_shape(cls, value: str) -> str:
        if not JOB_NAME.fullmatch(value):
            raise ValueError("use letters, digits, '_', '-', '.'")
        return value

    @field_validator("redis_url")
    @classmethod
    def _state_url(cls, value: str) -> str:
        check_url(value)  # its ValueError names what is wrong, never the password
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value:
            check_url(value, broker=True)
        return value

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url


@dataclass(frozen=True, slots=True)
class Config:
    """A whole validated config: settings plus jobs by name."""

    path: Path
    scheduler: SchedulerSettings
    jobs: Mapping[str, JobSpec]
    hash: str


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("SCHEDULER_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read, validate and freeze a config file and its includes; raise ConfigError."""
    # Nearly every object made here lives on, so the collector's passes over them (a third of
    # the load for 100,000 jobs) find nothing; any cycle is collected later, not lost.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load_config(path, env)
    finally:
        if collecting:
            gc.enable()


def _load_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None) -> Config:
    env = os.environ if env is None else env
    main = Path(path) if path is not None else default_config_path(env)
    document = _read_toml(main)
    problems: list[str] = []
    settings = _settings(main, document, env, problems)
    tables: dict[str, tuple[Path, object]] = {}
    _collect_jobs(main, document, tables, problems)
    if settings is not None:
        for pattern in settings.include:
            for included in _expand_include(main, pattern, problems):
                extra = _read_toml(included, problems)
                for key in extra:
                    if key != "jobs":
                        problems.append(
                            f"{included.name}: {key}: only [jobs.*] tables may be included"
                        )
                _collect_jobs(included, extra, tables, problems)
    zone = settings.timezone if settings is not None else zoneinfo.ZoneInfo("UTC")
    jobs: dict[str, JobSpec] = {}
    # Thousands of jobs often differ only in their names: validate each distinct table once.
    validated: dict[str, JobSpec] = {}
    for name in sorted(tables):
        source, table = tables[name]
        reuse = _reusable_key(table)
        shared = validated.get(reuse) if reuse is not None else None
        if shared is not None:
            jobs[name] = shared.renamed(name)
            continue
        spec = build_job(
            source, name, table, zone, problems, settings.namespace if settings else None
        )
        if spec is not None:
            jobs[name] = spec
            if reuse is not None:
                validated[reuse] = spec
    if settings is not None:
        settings = _with_password(main, settings, env, problems)
        try:
            load_key(settings.message_key_file, main.name)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems or settings is None:
        raise ConfigError(problems)
    return Config(main, settings, jobs, _hash(settings, jobs))


def _reusable_key(table: object) -> str | None:
    """What makes two job tables validate alike; None when the job's name matters (H)."""
    if not isinstance(table, dict) or "H" in str(table.get("cron", "")).upper():
        return None
    # Tables written alike (same keys in the same order) share a key; others only miss.
    return repr(table)


# Deeper than any config needs (rtoml itself stops near 80), and shallow enough that the
# tomllib fallback, quadratic in the depth of arrays, tables and dotted keys, stays fast.
MAX_NESTING = 64

# What the nesting scan steps over: strings and comments (their brackets and dots do not
# count), then each bracket, brace, dot and separator.
_NESTING_TOKENS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"{3,5}'
    r"|'''.*?'{3,5}"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}.=,\n]",
    re.DOTALL,
)
_BARE_CR = re.compile(r"\r(?!\n)")


def _read_toml(path: Path, problems: list[str] | None = None) -> dict[str, Any]:
    try:
        return _parse_toml(path, _read_text(path))
    except ConfigError as exc:
        if problems is None:
            raise
        problems.extend(exc.problems)
        return {}


def _read_text(path: Path) -> str:
    try:
        data = read_bounded(path, CONFIG_MAX_BYTES, "config file")
    except FileProblem as exc:
        raise ConfigError([str(exc)]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None
    if "\r" in text:
        bare = _BARE_CR.search(text)
        if bare is not None:
            line = text.count("\n", 0, bare.start()) + 1
            raise ConfigError(
                [
                    f"{path.name}: line {line}: a carriage return without a line feed "
                    "(TOML lines end in LF or CRLF)"
                ]
            )
    return text


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        # rtoml (Rust) reads a 100,000-job file ~9x faster than tomllib.
        document: dict[str, Any] = rtoml.loads(text)
        return document
    except rtoml.TomlParsingError:
        pass
    # Only a broken file gets here, so only it pays for the scan that keeps tomllib linear.
    too_deep = _too_deep_at(text, MAX_NESTING)
    if too_deep is not None:
        raise ConfigError(
            [
                f"{path.name}: {_place(text, too_deep)}: nested deeper than "
                f"{MAX_NESTING} levels (arrays, inline tables, dotted keys)"
            ]
        )
    try:
        return tomllib.loads(text)  # tomllib's error names line and column our way
    except RecursionError:
        raise ConfigError([f"{path.name}: nested too deeply to read"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_problem(path, text, exc)]) from None


def _too_deep_at(text: str, limit: int) -> int | None:
    """Where `text` first nests deeper than `limit`, in one linear pass; None if it never does.

    Each open bracket or brace is a level, and so is each dot of a dotted key (the dots
    since the last `=`, `,`, bracket or line end; a float's one dot counts once).
    """
    level = dots = 0
    for token in _NESTING_TOKENS.finditer(text):
        first = token.group()[0]
        if first == ".":
            dots += 1
        elif first in "[{":
            level, dots = level + 1, 0
        elif first in "]}":
            level, dots = level - 1, 0
        elif first in "=,\n":
            dots = 0
        if level + dots > limit:
            return token.start()
    return None


def _place(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - text.rfind(chr(10), 0, offset)}"


def _toml_problem(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says "... (at line 3, column 7)"; put the place first, like a compiler.
    said = str(exc)
    where = re.search(r"\(at line (\d+), column (\d+)\)", said)
    if where:
        what = said[: where.start()].strip()
        return f"{path.name}: line {where.group(1)}, column {where.group(2)}: {what}"
    if said.endswith("(at end of document)"):
        what = said.removesuffix("(at end of document)").strip()
        return f"{path.name}: line {len(text.splitlines())}, at its end: {what}"
    return f"{path.name}: {said}"


def _settings(
    path: Path, document: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> SchedulerSettings | None:
    for key in document:
        if key not in ("scheduler", "jobs"):
            problems.append(f"{path.name}: {key}: unknown table (expected [scheduler] or [jobs.*])")
    raw = document.get("scheduler", {})
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: scheduler: expected a table")
        return None
    raw = dict(raw)
    from_env = _environment(env, problems)
    raw.update(from_env)
    if isinstance(raw.get("include"), list):
        raw["include"] = tuple(raw["include"])
    try:
        settings = SchedulerSettings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(
            _named(path, line, from_env) for line in validation_lines(path, "scheduler", exc)
        )
        return None
    return settings


def _env_name(key: str) -> str:
    return f"SCHEDULER_{key.upper()}"


def _named(path: Path, line: str, from_env: Mapping[str, object]) -> str:
    """A validation line about a value from the environment names the variable, not the file."""
    for key in from_env:
        where = f"{path.name}: scheduler.{key}"
        if line.startswith(where + ":"):
            return f"{_env_name(key)}:{line[len(where) + 1 :]}"
        if line.startswith(where + "."):
            return f"{_env_name(key)}: {line[len(path.name) + 2 :]}"
    return line


_INTEGER = re.compile(r"[+-]?[0-9](?:_?[0-9])*")


def _environment(env: Mapping[str, str], problems: list[str]) -> dict[str, object]:
    """`SCHEDULER_<KEY>` overrides, each read as the TOML value it stands for: an integer
    setting as an integer, a list or table as JSON, anything else (durations, zones, URLs)
    as its string."""
    values: dict[str, object] = {}
    for key, field in SchedulerSettings.model_fields.items():
        text = env.get(_env_name(key))
        if text is None:
            continue
        kind = typing.get_origin(field.annotation) or field.annotation
        if kind is int:
            if not _INTEGER.fullmatch(text.strip()):
                problems.append(f"{_env_name(key)}: expected an integer, got {text!r}")
                continue
            values[key] = int(text.strip().replace("_", ""))
        elif kind in (tuple, list, dict):
            wanted, example = (
                (dict, '{"global_keyprefix": "x"}') if kind is dict else (list, '["jobs.d/*.toml"]')
            )
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if not isinstance(value, wanted):
                what = "a JSON object" if wanted is dict else "a JSON list"
                problems.append(f"{_env_name(key)}: expected {what} like {example}, got {text!r}")
                continue
            values[key] = tuple(value) if kind is tuple else value
        else:
            values[key] = text
    return values


def settings_from_environment(env: Mapping[str, str] | None = None) -> SchedulerSettings:
    """The defaults with the `SCHEDULER_*` overrides, for a process without a config file;
    raise ConfigError."""
    env = os.environ if env is None else env
    problems: list[str] = []
    where = Path("environment")
    settings = _settings(where, {}, env, problems)
    if settings is not None:
        settings = _with_password(where, settings, env, problems)
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _with_password(
    path: Path, settings: SchedulerSettings, env: Mapping[str, str], problems: list[str]
) -> SchedulerSettings:
    """Put the password from the environment or a file into redis_url, never into logs."""
    password = settings.redis_password
    source = (
        _env_name("redis_password")
        if "SCHEDULER_REDIS_PASSWORD" in env
        else f"{path.name}: scheduler.redis_password"
    )
    if settings.redis_password_file:
        source = (
            _env_name("redis_password_file")
            if "SCHEDULER_REDIS_PASSWORD_FILE" in env
            else f"{path.name}: scheduler.redis_password_file"
        )
        try:
            text = read_text_bounded(
                Path(settings.redis_password_file), SECRET_MAX_BYTES, "password file"
            )
        except FileProblem as exc:
            problems.append(f"{source}: {exc}")
            return settings
        password = text.strip()
    if not password:
        return settings
    # Redis would refuse such a password at the first AUTH; say so now, and not what it is.
    if any(char < " " or char == "\x7f" for char in password):
        problems.append(
            f"{source}: the password holds a NUL byte or another control character "
            "(a password is one line of text)"
        )
        return settings
    update = {"redis_url": with_password(settings.redis_url, password)}
    # A broker on the same Redis server logs in the same way.
    if settings.broker_url and same_redis(settings.broker_url, settings.redis_url):
        update["broker_url"] = with_password(settings.broker_url, password)
    return settings.model_copy(update=update)


def _collect_jobs(
    path: Path,
    document: Mapping[str, Any],
    tables: dict[str, tuple[Path, object]],
    problems: list[str],
) -> None:
    jobs = document.get("jobs", {})
    if not isinstance(jobs, dict):
        problems.append(f"{path.name}: jobs: expected tables like [jobs.NAME]")
        return
    for name, table in jobs.items():
        if not JOB_NAME.fullmatch(name):
            # Shown quoted, as TOML writes it: a newline or a blank in it stays on the line.
            shown = json.dumps(name[:80] + ("..." if len(name) > 80 else ""))
            problems.append(
                f"{path.name}: jobs.{shown}: job name may only use letters, digits, '_', '-', '.'"
            )
        elif name in tables:
            problems.append(
                f"{path.name}: jobs.{name}: defined twice (also in {tables[name][0].name})"
            )
        else:
            tables[name] = (path, table)


def _expand_include(main: Path, pattern: str, problems: list[str]) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(main.parent / pattern)
    found = sorted(Path(p) for p in glob.glob(full))
    if not found and not glob.has_magic(pattern):
        problems.append(f"{main.name}: scheduler.include: no file matches {pattern!r}")
    return found


def _hash(settings: SchedulerSettings, jobs: Mapping[str, JobSpec]) -> str:
    """A short digest of what nodes must agree on; the same text gives the same hash."""
    digest = hashlib.sha256(f"{settings.namespace}\n{settings.timezone.key}\n".encode())
    # Jobs renamed from one validated table share its trigger: write its fingerprint once.
    texts: dict[int, str] = {}
    lines: list[str] = []
    for name in sorted(jobs):
        spec = jobs[name]
        text = texts.get(id(spec.trigger))
        if text is None:
            fingerprint = json.dumps(spec.fingerprint(), sort_keys=True, default=str)
            text = texts[id(spec.trigger)] = f"={fingerprint}\n"
        lines.append(f'"{name_in_json(name)}"{text}')  # json.dumps(name), faster
        if len(lines) == 1000:  # fed in batches: 100,000 lines at once cost 90 MB at peak
            digest.update("".join(lines).encode())
            lines.clear()
    digest.update("".join(lines).encode())
    return digest.hexdigest()[:12]
