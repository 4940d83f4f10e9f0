"""The config file's JSON Schema, for editors (Taplo, Even Better TOML): `scheduler schema`.

Generated from the pydantic models that validate the file (`SchedulerSettings`, the job
table), so a key added there appears here with its type and default. What pydantic cannot see
is added on top: a duration is a number of seconds or a string like "1h30m", a zone is a tz
database name, TOML has no null (a key left out takes its default), a job has exactly one of
cron, every, at and calendar and one of task, command, http, chain and group, and every key
gets a short description.

Only keywords that mean the same in drafts 4 to 7 are used, since Taplo implements draft 4.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from scheduler.config import SchedulerSettings
from scheduler.durations import MAX_DURATION, format_duration
from scheduler.jobspec import ACTIONS, JOB_NAME
from scheduler.jobspec import _JobTable as JobTable
from scheduler.jobspec_options import (
    CELERY_HEADERS,
    HTTP_METHODS,
    MAX_RETRIES,
    MAX_STEPS,
    OUR_HEADER_PREFIX,
)

DIALECT = "http://json-schema.org/draft-07/schema#"

# What scheduler.durations.parse_duration reads: a number, or number-unit parts ("1h30m",
# "1h 30m"), units in either case, blanks around. Stricter only about a blank inside a number.
DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)? *([mM][sS]|[sSmMhHdDwW]) *)+)\s*$"
DURATION_EXAMPLES = ("90s", "1h30m", "500ms", "2d")
JOB_NAME_PATTERN = f"^{JOB_NAME.pattern}$"
TRIGGERS = ("cron", "every", "at", "calendar")


def duration_schema(minimum_s: float = 0, *, whole: bool = False) -> JsonSchemaValue:
    """A duration as the config accepts it: seconds as a number, or text with units."""
    number: JsonSchemaValue = {
        "type": "number",
        "minimum": minimum_s,
        "maximum": int(MAX_DURATION.total_seconds()),
    }
    if whole:
        number["multipleOf"] = 1
    return {
        "anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}],
        "examples": list(DURATION_EXAMPLES),
    }


_ZONE: JsonSchemaValue = {
    "type": "string",
    "minLength": 1,
    "examples": ["UTC", "Europe/Berlin", "America/New_York"],
}
# A TOML date-time (editors hand it to the schema as a string) or a string holding one.
_INSTANT: JsonSchemaValue = {
    "type": "string",
    "examples": ["2026-12-01T09:00:00+01:00", "2026-12-01T09:00:00"],
}


def _step(compose: str) -> JsonSchemaValue:
    properties: dict[str, JsonSchemaValue] = {
        "task": {"type": "string", "minLength": 1},
        "args": {"type": "array"},
        "kwargs": {"type": "object"},
    }
    if compose == "chain":
        properties["immutable"] = {"type": "boolean"}
    return {
        "type": "object",
        "required": ["task"],
        "properties": properties,
        "additionalProperties": False,
    }


def _steps(compose: str) -> JsonSchemaValue:
    return {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": _step(compose)}


_HEADERS: JsonSchemaValue = {
    "type": "object",
    # Draft 4 has no propertyNames: refused names as a pattern and a list of required keys.
    "patternProperties": {f"^{OUR_HEADER_PREFIX}": {"not": {}}},
    "not": {"anyOf": [{"required": [name]} for name in sorted(CELERY_HEADERS)]},
}
_HTTP: JsonSchemaValue = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "method": {"enum": list(HTTP_METHODS), "default": "GET"},
        "url": {
            "type": "string",
            "pattern": "^https?://",
            "examples": ["https://example.com/hook"],
        },
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "json": {},
        "timeout": {**duration_schema(1), "default": "10s"},
        "expect": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "integer", "minimum": 100, "maximum": 599},
        },
    },
    "additionalProperties": False,
}
_EXPIRES: JsonSchemaValue = {
    "anyOf": [*duration_schema(1)["anyOf"], {"enum": ["next"]}],
    "examples": ["30s", "5m", "next"],
}

# Shapes the annotations do not tell (the job table keeps the raw TOML types it accepts).
_SHAPES: dict[type[BaseModel], dict[str, JsonSchemaValue]] = {
    SchedulerSettings: {
        "timezone": _ZONE,
        "namespace": {"type": "string", "pattern": JOB_NAME_PATTERN},
        "lease_ttl": duration_schema(0.3),
        "history_ttl": duration_schema(60),
        "http_listen": {"type": "string", "examples": ["127.0.0.1:9464", "9464", ""]},
    },
    JobTable: {
        "timezone": _ZONE,
        "cron": {
            "type": "string",
            "minLength": 1,
            "examples": ["*/5 * * * *", "0 9 * * 1-5", "H * * * *", "@daily"],
        },
        "every": duration_schema(1, whole=True),
        "misfire_grace": duration_schema(),
        "alert_after": duration_schema(1),
        "at": _INSTANT,
        "start": _INSTANT,
        "calendar": {"type": "object"},
        "routing_key": {"type": "string", "minLength": 1},
        "exchange": {"type": "string", "minLength": 1},
        "priority": {"type": "integer", "minimum": 0, "maximum": 9},
        "headers": _HEADERS,
        "expires": _EXPIRES,
        "soft_time_limit": duration_schema(1),
        "time_limit": duration_schema(1),
        "jitter": duration_schema(),
        "end": _INSTANT,
        "max_runs": {"type": "integer", "minimum": 1},
        "chain": _steps("chain"),
        "group": _steps("group"),
        "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "cwd": {"type": "string", "pattern": "^/"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout": duration_schema(1),
        "user": {"type": "string", "minLength": 1},
        "http": _HTTP,
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES},
        "retry_delay": duration_schema(),
    },
}

_DESCRIPTIONS: dict[type[BaseModel], dict[str, str]] = {
    SchedulerSettings: {
        "redis_url": "Redis holding the lease, watermarks, fire records and outcomes. "
        "No password here: SCHEDULER_REDIS_PASSWORD or redis_password_file.",
        "broker_url": "Where Celery workers pick up tasks (redis://, amqp://); empty: the "
        "same as redis_url, where claim and enqueue are one atomic step.",
        "namespace": "Prefix of every Redis key of this deployment, so deployments can share "
        "one Redis: letters, digits, '_', '-', '.'.",
        "timezone": "The zone cron jobs without their own timezone are read in: a tz "
        'database name like "Europe/Berlin".',
        "lease_ttl": "How long a leader's lease lasts without renewal: a dead leader is "
        "replaced after about this long. At least 300ms.",
        "max_clock_offset": "Above this offset between this node's clock and Redis's, the "
        "node refuses leadership.",
        "outbox_max": "Claimed slots waiting for a broker other than this Redis; when full, "
        "the leader stops claiming and records the slots as missed ranges.",
        "include": "More job files, globs relative to this file; they may hold only "
        "[jobs.NAME] tables.",
        "redis_password": "Password for redis_url (and the broker when broker_url is empty). "
        "Better kept out of this file: SCHEDULER_REDIS_PASSWORD or redis_password_file.",
        "redis_password_file": "A file holding the Redis password, e.g. from systemd's "
        "LoadCredential=.",
        "message_key_file": "A secret key file: with it every message is signed and the "
        "worker hook refuses unsigned or mis-signed ones.",
        "broker_transport_options": "Kombu transport options for the broker, e.g. "
        '{ global_keyprefix = "x:" }; workers read the same.',
        "history_max": "Run reports kept per job: at most this many entries.",
        "history_ttl": "Run reports kept per job: none older than this. At least 1m.",
        "alert_task": "Celery task the dead man's switch sends (kwargs job, reason, since, "
        "last_success) for a job that stopped succeeding; a job's own alert_task wins.",
        "alert_webhook": "http(s) URL the dead man's switch POSTs its alert to as JSON; a "
        "job's own alert_webhook wins.",
        "http_listen": 'Listener for /metrics, /healthz, /readyz and the status page: "host:'
        'port" (a bare port listens on loopback only); off when empty.',
        "metrics_jobs_max": "Per-job metric series for at most this many jobs; the totals "
        "are always exported.",
        "result_backend": "Where workers keep task results (Celery's result_backend): empty "
        'means the state Redis; "db+sqlite:///path" or another SQLAlchemy URL for a database.',
        "result_expires": "Workers' task results are deleted after this long.",
    },
    JobTable: {
        "task": "The Celery task name: the scheduler sends it by name, never imports it.",
        "cron": "Vixie-cron expression (5 fields; H for a minute or hour hashed from the job "
        "name; @hourly, @daily, ...), read in the job's timezone. One of cron, every, at.",
        "every": "Interval in whole seconds, at least 1s: slots at start + k * every, the "
        "same on every node. One of cron, every, at.",
        "at": "One instant: a TOML date-time or an ISO 8601 string; without an offset it is "
        "read in the job's timezone. One of cron, every, at.",
        "timezone": "This job's zone, a tz database name; default: [scheduler] timezone.",
        "args": "Positional arguments of the task, sent as JSON.",
        "kwargs": "Keyword arguments of the task, sent as JSON.",
        "queue": "The queue the message lands on (workers choose with celery worker -Q).",
        "catchup": "Missed slots a new leader fires: all (younger than misfire_grace), "
        "latest (only the newest), none.",
        "misfire_grace": "A missed slot older than this is recorded as missed, not fired.",
        "start": "No slot before it; for an every job also its grid's origin (default: the "
        "Unix epoch). Needed by calendar and max_runs.",
        "overlap": "A slot due while the previous run still runs: allow it, or skip it "
        '(recorded with reason "overlap").',
        "alert_after": "The dead man's switch: alert when no run succeeded for this long "
        "(at least 1s); off when left out.",
        "alert_task": "This job's alert task, instead of [scheduler] alert_task.",
        "alert_webhook": "This job's alert webhook, instead of [scheduler] alert_webhook.",
        "calendar": "Calendar rules (a table; see the docs), counted from start, which it "
        "needs. One of cron, every, at, calendar.",
        "routing_key": "Routing key the message is published with (default: the queue "
        "name); with exchange, where a broker's bindings route it.",
        "exchange": "Exchange the message is published to (default: the queue's own).",
        "priority": "Message priority 0-9, as Celery's: on RabbitMQ 9 runs first (the queue "
        "needs x-max-priority); on Redis kombu reads 0 first, from priority sub-queues.",
        "headers": "Extra message headers (JSON values); never scheduler_* or Celery's own.",
        "expires": 'A duration after the slot, or "next" (the job\'s next slot): a worker '
        "discards the message once it has expired.",
        "soft_time_limit": "Celery's soft time limit (SoftTimeLimitExceeded in the task); "
        "shorter than time_limit.",
        "time_limit": "Celery's hard time limit: the worker kills a task running longer.",
        "ignore_result": "Ask the worker not to store the task's result.",
        "jitter": "Delay each fire by a random amount up to this (shorter than the interval).",
        "end": "No slot after this instant.",
        "max_runs": "Only the first max_runs slots from start (which it needs).",
        "enabled": "false: the job is kept and listed but never fired.",
        "chain": "Tasks run one after another, each given the previous result (Celery's "
        "chain); steps { task, args, kwargs, immutable }. Instead of task.",
        "group": "Tasks sent together (Celery's group); steps { task, args, kwargs }. "
        "Instead of task.",
        "command": "A program and its arguments run by the workers' jobs.builtin.shell, "
        "without a shell. Instead of task.",
        "cwd": "Working directory of a command job (an absolute path).",
        "env": "Environment variables added for a command job.",
        "timeout": "A command job's process is killed after this long.",
        "user": "The user a command job runs as.",
        "http": "An HTTP request the workers' jobs.builtin.http sends: { method, url, "
        "headers, json, timeout, expect }. Instead of task.",
        "retries": "How often a command or http job is retried after a failure (0-100).",
        "retry_delay": "Delay before a command or http job's retry.",
        "retry_backoff": "Double retry_delay after each retry.",
    },
}

# Hover text for enum values (Taplo's x-taplo extension; other tools ignore it).
_ENUM_DOCS: dict[str, dict[str, str]] = {
    "catchup": {
        "all": "Fire every missed slot younger than misfire_grace.",
        "latest": "Fire only the newest missed slot.",
        "none": "Fire none that are late.",
    },
    "overlap": {
        "allow": "Send the slot whatever the previous run is doing.",
        "skip": "Skip the slot while the previous run still runs.",
    },
}


class _TomlSchema(GenerateJsonSchema):
    """pydantic's generator, speaking of values as TOML writes them."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return duration_schema()

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        # TOML has no null: an optional key is one left out.
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if generated.get("default", ...) is None:
            del generated["default"]
        return generated

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        if isinstance(dft, zoneinfo.ZoneInfo):
            return dft.key
        return super().encode_default(dft)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Lease Ttl" says less than the key itself


def table_schema(model: type[BaseModel], description: str) -> JsonSchemaValue:
    """One TOML table's schema: the model's, with shapes, descriptions and no titles."""
    generated = model.model_json_schema(schema_generator=_TomlSchema)
    if "$defs" in generated:
        raise ValueError(f"{model.__name__}: nested models need their definitions carried over")
    generated.pop("title", None)
    generated.pop("description", None)  # the model's docstring, written for Python readers
    generated = {"description": description, **generated}
    properties: dict[str, JsonSchemaValue] = generated["properties"]
    for name, field in model.model_fields.items():
        shaped = dict(_SHAPES.get(model, {}).get(name, properties[name]))
        if "default" in properties[name]:
            shaped["default"] = properties[name]["default"]
        description_text = field.description or _DESCRIPTIONS[model].get(name)
        if description_text:  # tests/unit/test_schema.py insists every key has one
            shaped = {"description": description_text, **shaped}
        if name in _ENUM_DOCS and "enum" in shaped:
            docs = _ENUM_DOCS[name]
            shaped["x-taplo"] = {"docs": {"enumValues": [docs[v] for v in shaped["enum"]]}}
        properties[name] = shaped
    return generated


def job_schema() -> JsonSchemaValue:
    """A [jobs.NAME] table: exactly one trigger and one action; `calendar` and `max_runs`
    need `start`."""
    job = table_schema(
        JobTable,
        "One job: exactly one of task, command, http, chain, group, and exactly one of "
        "cron, every, at, calendar.",
    )
    triggers = [
        {"required": ["cron"]},
        {"required": ["every"]},
        {"required": ["at"]},
        {"required": ["calendar", "start"]},
    ]
    actions = [{"required": [action]} for action in ACTIONS]
    job["allOf"] = [
        {"oneOf": triggers},
        {"oneOf": actions},
        {"anyOf": [{"not": {"required": ["max_runs"]}}, {"required": ["start"]}]},
    ]
    job["x-taplo"] = {"initKeys": ["task"]}
    return job


def config_schema() -> JsonSchemaValue:
    """The whole file: [scheduler] and [jobs.NAME] (an included file holds only the latter)."""
    return {
        "$schema": DIALECT,
        "title": "scheduler config",
        "description": "A highly available cron for Celery: [scheduler] settings and "
        "[jobs.NAME] tables. Check a file with `scheduler validate`.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "scheduler": table_schema(
                SchedulerSettings,
                "Where state lives and how leadership behaves. Any key can also come from "
                "the environment as SCHEDULER_<KEY>.",
            ),
            "jobs": {
                "type": "object",
                "description": "Jobs by name: letters, digits, '_', '-', '.'.",
                "patternProperties": {JOB_NAME_PATTERN: job_schema()},
                "additionalProperties": False,
            },
        },
    }


def schema_text() -> str:
    """The schema as `scheduler schema` prints it: indented JSON ending in a newline."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
