"""Celery messages for fires: protocol 2, JSON only, sent by task name, with our headers.

The scheduler never imports task code. Messages are built by Celery and kombu themselves, so a
stock worker reads them; for a Redis broker we also capture the exact Redis command kombu
would run (``LPUSH <queue> <payload>``) so a Lua script can run it together with the claim.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery
from celery.utils.saferepr import saferepr
from kombu import Connection, Exchange, Producer, Queue
from kombu.serialization import dumps

from scheduler.clock import utc
from scheduler.config import SchedulerSettings
from scheduler.connections import kombu_broker
from scheduler.jobspec import JobSpec, name_in_json
from scheduler.message_key import load_key
from scheduler.queues import QueueDeclaration, kombu_queue, queue_declarations
from scheduler.signing import Signer, canonical_body
from scheduler.triggers import AtTrigger
from scheduler.wire import (
    HEADER_JOB,
    HEADER_JOB_HASH,
    HEADER_KIND,
    HEADER_SIGNATURE,
    HEADER_SLOT,
    HEADER_TOKEN,
    job_hash,
    member_id,
    slot_text,
    task_id,
    task_id_of_text,
)

# Broker URL schemes served by kombu's Redis transport (Sentinel included).
REDIS_SCHEMES = ("redis", "rediss", "sentinel", "redis+socket")
# The fencing token header of an operator's fire: no lease ever hands out token 0.
OPERATOR_TOKEN = "0"  # noqa: S105 (a fencing token, not a secret)


def _app(broker_url: str, transport_options: dict[str, Any]) -> Any:
    options = dict(transport_options)
    if broker_url.split("://", 1)[0] in ("amqp", "pyamqp", "amqps"):
        # Wait for RabbitMQ's confirm: a claimed slot is published only once it is accepted.
        options.setdefault("confirm_publish", True)
    app = Celery("scheduler", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], broker_transport_options=options
    )
    return app


@dataclass(frozen=True, slots=True)
class RedisPush:
    """The Redis command kombu would run to deliver one message: LPUSH key payload."""

    key: str
    payload: bytes


# Placeholders in a message template: per fire, and per job.
_ID, _SLOT, _TOKEN, _TAG, _SIG = "@@id@@", "@@slot@@", "@@token@@", "@@tag@@", "@@sig@@"
_TASK, _JOB, _QUEUE = "@@task@@", "@@job@@", "@@queue@@"
_ARGSREPR, _KWARGSREPR, _BODY = "@@argsrepr@@", "@@kwargsrepr@@", "@@body@@"
_PLACES = (_ID, _ID, _ID, _SLOT, _TOKEN, _TAG, _TASK, _JOB, _QUEUE, _ARGSREPR, _KWARGSREPR, _BODY)
_EXPIRES, _GROUP = "@@expires@@", "@@group@@"  # per fire, in the messages of option jobs
_PLACEHOLDER = re.compile(
    "(@@(?:id|slot|token|tag|sig|task|job|queue|argsrepr|kwargsrepr|body|expires|group)@@)"
)
# The retries of a built-in task (jobs/builtin), read by the worker side.
HEADER_RETRIES = "scheduler_retries"
# An expiry of "next" for a fire that has no next slot (an end or max_runs reached).
_NO_NEXT_SLOT = "9999-12-31T23:59:59+00:00"
# The third element of a protocol 2 body, as Celery's as_task_v2 writes it for a plain task.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass(frozen=True, slots=True)
class _Template:
    """A message as text pieces; the odd pieces are placeholders still to fill."""

    key: str
    pieces: tuple[str, ...]
    # The HMAC state over what the job's fires share (Signer.prepare), when signing.
    mac: Any = None

    def fill(self, values: dict[str, str], key: str) -> _Template:
        """Fill some placeholders; merge the text around them."""
        merged: list[str] = [self.pieces[0]]
        for index in range(1, len(self.pieces), 2):
            name, text = self.pieces[index], self.pieces[index + 1]
            if name in values:
                merged[-1] += values[name] + text
            else:
                merged += [name, text]
        return _Template(key, tuple(merged))

    def render(self, values: dict[str, str]) -> str:
        pieces = list(self.pieces)
        pieces[1::2] = [values[name] for name in pieces[1::2]]
        return "".join(pieces)


class _CapturedBatch:
    """Stands in for kombu's Redis publish batch: records the commands instead of sending them."""

    def __init__(self, channel: Any, key_prefix: str) -> None:
        self.channel = channel
        self.key_prefix = key_prefix
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def publish(self, message: Any, **kwargs: Any) -> None:
        self.channel.basic_publish(message, _publish_batch=self, **kwargs)

    def add(self, name: str, *args: Any) -> None:
        self.commands.append((name, args))

    def flush(self) -> None:
        """Nothing to do: the caller sends the captured commands itself."""

    def discard(self) -> None:
        self.commands.clear()

    def close(self) -> None:
        """Nothing is held open."""


class MessageFactory:
    """Builds the Celery message of a fire, once per (job, slot, token)."""

    def __init__(
        self,
        namespace: str,
        broker_url: str,
        transport_options: dict[str, Any],
        state_url: str | None = None,
        *,
        message_key: bytes | None = None,
        message_key_file: str = "",
    ) -> None:
        """`message_key` (or the file `message_key_file` holds it in: a ConfigError if it is
        unusable) signs every message; without either, messages are unsigned."""
        self.namespace = namespace
        key = message_key if message_key is not None else load_key(message_key_file)
        self.signer = Signer(key) if key is not None else None
        broker_url, transport_options = kombu_broker(broker_url, dict(transport_options))
        self.app = _app(broker_url, transport_options)
        # Messages are always built as kombu's Redis transport writes them: the LPUSH of a
        # same-Redis broker, or an outbox entry that any node can publish to another broker.
        # For a broker that is not Redis, that capture runs against the state's Redis.
        self.redis_broker = broker_url.split("://", 1)[0] in REDIS_SCHEMES
        if self.redis_broker or state_url is None:
            self._capture_app = self.app
            self.key_prefix = str(transport_options.get("global_keyprefix", ""))
        else:
            state_url, state_options = kombu_broker(state_url, {})
            self._capture_app = _app(state_url, state_options)
            self.key_prefix = ""
        self._capture_connection: Connection | None = None
        self._capture_producer: Producer | None = None
        self._capture: _CapturedBatch | None = None
        self._by_identity: dict[tuple[str, str, int, int], tuple[object, object, _Template]] = {}
        self._shape: _Template | None = None
        self._by_content: dict[tuple[str, str, str], _Template] = {}
        self._by_option_job: dict[int, tuple[JobSpec, list[tuple[_Template, str, bytes]]]] = {}
        self._by_definition: dict[str, list[tuple[_Template, str, bytes]]] = {}
        self._capture_lock = threading.Lock()
        self._tag_prefix = str(uuid.uuid4())[:24]
        self._tags_sent = 0
        # The config file's queues that need more than Celery's default declaration (a named
        # exchange, a priority), as the workers declare them: see use_jobs().
        self._declarations: dict[str, QueueDeclaration] = {}
        self._bound: dict[tuple[str, str], list[QueueDeclaration]] = {}

    @classmethod
    def for_settings(cls, settings: SchedulerSettings) -> MessageFactory:
        """The factory a deployment's `[scheduler]` table describes (broker, signing key)."""
        return cls(
            settings.namespace,
            settings.effective_broker_url,
            settings.broker_transport_options,
            state_url=settings.redis_url,
            message_key_file=settings.message_key_file,
        )

    def publish_arguments(self, job: JobSpec, slot_s: int, token: int) -> dict[str, Any]:
        """Keyword arguments for kombu's Producer.publish, as Celery's own send_task builds them."""
        return self._arguments(job, slot_s, str(token), task_id(self.namespace, job.name, slot_s))

    def operator_publish_arguments(
        self, job: JobSpec, slot_s: int, ident: str, kind: str
    ) -> dict[str, Any]:
        """The message of an operator's fire (`trigger`, `backfill`, `resume --catchup`): as
        `publish_arguments` builds a scheduled one, under the task id `ident`, with the
        `scheduler_kind` header and token "0" (no lease covers it; no leader's token is 0)."""
        return self._arguments(job, slot_s, OPERATOR_TOKEN, ident, kind)

    def _arguments(
        self,
        job: JobSpec,
        slot_s: int,
        token: str,
        ident: str,
        kind: str | None = None,
        index: int = 0,
    ) -> dict[str, Any]:
        """The publish arguments of message `index` of a fire (a group sends one per step)."""
        task, args, kwargs = job.task, job.args, job.kwargs
        options: dict[str, Any] = {}
        if not job.plain:
            options = self._celery_options(job, slot_s, ident, index)
            if job.compose is not None:
                step = job.steps[index]
                task, args, kwargs = step.task, step.args, step.kwargs
                ident = member_id(ident, index)
        message = self.app.amqp.as_task_v2(
            ident, task, args=list(args), kwargs=dict(kwargs), origin="scheduler", **options
        )
        # The job's own headers first: Celery's and ours win (the validator refuses clashes).
        headers = {**job.headers, **message.headers} if job.headers else dict(message.headers)
        headers[HEADER_JOB] = job.name
        headers[HEADER_SLOT] = slot_text(slot_s)
        headers[HEADER_TOKEN] = token
        if kind is not None:
            headers[HEADER_KIND] = kind
        if job.action in ("command", "http"):
            headers[HEADER_JOB_HASH] = job_hash(job.fingerprint())
        if job.retries:
            headers[HEADER_RETRIES] = {
                "retries": job.retries,
                "delay_s": job.retry_delay.total_seconds(),
                "backoff": job.retry_backoff,
            }
        if self.signer is not None:
            # The signature covers the embedded rest of a chain too: the worker checks it.
            body = canonical_body(args, kwargs, {"chain": options.get("chain")})
            headers[HEADER_SIGNATURE] = self.signer.sign(
                task, body, job.name, headers[HEADER_SLOT], ident
            )
        exchange, routing_key = self._route(job)
        arguments = {
            "body": message.body,
            "routing_key": routing_key,
            "exchange": exchange,
            "headers": headers,
            "serializer": "json",
            "delivery_mode": 2,
            **message.properties,
        }
        if job.priority is not None:
            arguments["priority"] = job.priority
        return arguments

    def message_arguments(self, job: JobSpec, slot_s: int, token: int) -> list[dict[str, Any]]:
        """Every message of a scheduled fire: one, or one per step of a group."""
        ident = task_id(self.namespace, job.name, slot_s)
        count = len(job.steps) if job.compose == "group" else 1
        return [self._arguments(job, slot_s, str(token), ident, index=i) for i in range(count)]

    def operator_message_arguments(
        self, job: JobSpec, slot_s: int, ident: str, kind: str
    ) -> list[dict[str, Any]]:
        """Every message of an operator's fire (see operator_publish_arguments)."""
        count = len(job.steps) if job.compose == "group" else 1
        return [
            self._arguments(job, slot_s, OPERATOR_TOKEN, ident, kind, index=i) for i in range(count)
        ]

    def _route(self, job: JobSpec) -> tuple[str, str]:
        """(exchange, routing_key) of the publish. A broker that routes (AMQP) gets the job's
        exchange and routing key. kombu's Redis transport has no broker-side routing: it
        would read the bindings workers declared on every publish, and put a message back by
        its delivery_info when a worker dies; the scheduler pushes to `queue` itself, so the
        message says exactly that ("" and the queue), and is restored to the same queue."""
        if self.redis_broker or (job.exchange is None and job.routing_key is None):
            return "", job.queue
        # Without an exchange: the queue's own, as the workers declare it (scheduler/queues.py).
        return job.exchange or job.queue, job.routing_key or job.queue

    def _celery_options(self, job: JobSpec, slot_s: int, ident: str, index: int) -> dict[str, Any]:
        """as_task_v2's keyword arguments for the job's options."""
        options: dict[str, Any] = {}
        if job.expires is not None:
            options["expires"] = expiry(job, slot_s)
        if job.time_limit is not None:
            options["time_limit"] = job.time_limit.total_seconds()
        if job.soft_time_limit is not None:
            options["soft_time_limit"] = job.soft_time_limit.total_seconds()
        if job.ignore_result:
            options["ignore_result"] = True
        if job.compose == "group":
            options["group_id"] = group_id(self.namespace, job.name, slot_s)
            options["group_index"] = index
        if job.compose == "chain" and len(job.steps) > 1:
            options["chain"] = self._chain_rest(job)
        return options

    def _chain_rest(self, job: JobSpec) -> list[dict[str, Any]]:
        """A chain's steps after the first as Celery embeds them: signatures, last first
        (celery/canvas.py _chain.run; the worker pops the next one off the end)."""
        # Each later step is sent by the worker that ran the one before: it goes where the
        # job's first step went, or to Celery's default queue (where no worker may listen).
        route: dict[str, Any] = {"queue": job.queue}
        if not self.redis_broker and (job.exchange is not None or job.routing_key is not None):
            route["exchange"], route["routing_key"] = self._route(job)
        if job.priority is not None:
            route["priority"] = job.priority
        return [
            dict(
                self.app.signature(
                    step.task,
                    list(step.args),
                    dict(step.kwargs),
                    immutable=step.immutable,
                    **route,
                )
            )
            for step in reversed(job.steps[1:])
        ]

    def redis_push(self, job: JobSpec, slot_s: int, token: int) -> RedisPush:
        """The LPUSH kombu's Redis transport would run for this fire, filled into a template.

        kombu builds one message, once; every fire fills in what differs (microseconds,
        instead of kombu's ~250 µs). tests/unit/test_messages.py holds the two equal.
        """
        if not job.plain:
            return self.redis_pushes(job, slot_s, token)[0]
        template = self.template(job)
        slot = slot_text(slot_s)
        ident = task_id_of_text(self.namespace, job.name, slot)
        fire = {
            _ID: ident,
            _SLOT: slot,
            _TOKEN: str(token),
            _TAG: self._delivery_tag(),
            _JOB: name_in_json(job.name),
        }
        if template.mac is not None:
            fire[_SIG] = Signer.finish(template.mac, job.name, slot, ident)
        return RedisPush(template.key, template.render(fire).encode())

    def redis_pushes(self, job: JobSpec, slot_s: int, token: int) -> list[RedisPush]:
        """Every LPUSH of a fire: one, or one per step of a group. A job with options has
        templates of its own (built by kombu once per distinct definition); a fire fills in
        its identity, and the values that depend on its slot (expiry, group id)."""
        if job.plain:
            return [self.redis_push(job, slot_s, token)]
        templates = self._option_templates(job)
        slot = slot_text(slot_s)
        ident = task_id_of_text(self.namespace, job.name, slot)
        fire = {_SLOT: slot, _TOKEN: str(token), _JOB: name_in_json(job.name)}
        if job.expires is not None:
            fire[_EXPIRES] = expiry(job, slot_s)
        if job.compose == "group":
            fire[_GROUP] = group_id(self.namespace, job.name, slot_s)
        pushes = []
        for index, (template, task, body) in enumerate(templates):
            values = {**fire, _ID: member_id(ident, index), _TAG: self._delivery_tag()}
            if self.signer is not None:
                values[_SIG] = self.signer.sign(task, body, job.name, slot, values[_ID])
            pushes.append(RedisPush(template.key, template.render(values).encode()))
        return pushes

    def _option_templates(self, job: JobSpec) -> list[tuple[_Template, str, bytes]]:
        """The templates of an option job's messages, with what signing each needs (cached
        by definition: jobs renamed from one table share them)."""
        known = self._by_option_job.get(id(job))
        if known is not None and known[0] is job:
            return known[1]
        definition = json.dumps(job.fingerprint(), sort_keys=True, default=str)
        templates = self._by_definition.get(definition)
        if templates is None:
            templates = self._by_definition[definition] = self._build_option_templates(job)
        self._by_option_job[id(job)] = (job, templates)
        return templates

    def _build_option_templates(self, job: JobSpec) -> list[tuple[_Template, str, bytes]]:
        built = []
        for index, arguments in enumerate(self.message_arguments(job, 0, 0)):
            push = self._capture_push(arguments, job.queue)
            message = json.loads(push.payload)
            headers, properties = message["headers"], message["properties"]
            headers["id"] = headers["root_id"] = properties["correlation_id"] = _ID
            headers[HEADER_SLOT], headers[HEADER_TOKEN], headers[HEADER_JOB] = _SLOT, _TOKEN, _JOB
            if job.expires is not None:
                headers["expires"] = _EXPIRES
            if job.compose == "group":
                headers["group"] = _GROUP
            if self.signer is not None:
                headers[HEADER_SIGNATURE] = _SIG
            properties["delivery_tag"] = _TAG
            pieces = tuple(_PLACEHOLDER.split(json.dumps(message)))
            step = job.steps[index] if job.compose is not None else None
            task = step.task if step is not None else job.task
            args, kwargs = (step.args, step.kwargs) if step is not None else (job.args, job.kwargs)
            embedded = {"chain": self._chain_rest(job)} if job.compose == "chain" else None
            built.append(
                (_Template(push.key, pieces), task, canonical_body(args, kwargs, embedded))
            )
        return built

    def _delivery_tag(self) -> str:
        """Unique per message, as kombu's uuid4 is: a random per-process part and a counter."""
        self._tags_sent += 1
        return f"{self._tag_prefix}{self._tags_sent:012x}"

    def template(self, job: JobSpec) -> _Template:
        """The message of the job's task, arguments and queue, with placeholders for the job's
        name and what differs between its fires (cached)."""
        # Jobs renamed from one config table hold the same args and kwargs objects: finding
        # them by identity spares 100,000 such jobs a JSON dump each. The entry holds both
        # objects, so their ids cannot be reused by others while it is cached.
        identity = (job.task, job.queue, id(job.args), id(job.kwargs))
        known = self._by_identity.get(identity)
        if known is not None and known[0] is job.args and known[1] is job.kwargs:
            return known[2]
        content = (job.task, job.queue, json.dumps([job.args, job.kwargs], sort_keys=True))
        template = self._by_content.get(content)
        if template is None:
            template = self._by_content[content] = self._content_template(job)
        self._by_identity[identity] = (job.args, job.kwargs, template)
        return template

    def forget_templates(self) -> None:
        """Drop cached templates (after a reload): they hold the old jobs' arguments alive."""
        self._by_identity = {}
        self._by_content = {}
        self._by_option_job = {}
        self._by_definition = {}

    def _content_template(self, job: JobSpec) -> _Template:
        if self._shape is None:
            self._shape = self._build_shape()
        args, kwargs = list(job.args), dict(job.kwargs)
        repr_levels = self.app.conf.task_repr_maxlevels
        amqp = self.app.amqp
        _, _, body = dumps((args, kwargs, _EMBED), serializer="json")
        text = {
            _TASK: job.task,
            _QUEUE: job.queue,
            # as Celery: empty args become a tuple first, so they read "()"
            _ARGSREPR: saferepr(args or (), amqp.argsrepr_maxsize, maxlevels=repr_levels),
            _KWARGSREPR: saferepr(kwargs, amqp.kwargsrepr_maxsize, maxlevels=repr_levels),
            _BODY: base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode(),
        }
        # Placed inside JSON strings: escape as JSON does, without the quotes.
        escaped = {name: json.dumps(value)[1:-1] for name, value in text.items()}
        template = self._shape.fill(escaped, key=self.key_prefix + job.queue)
        if self.signer is None:
            return template
        return replace(template, mac=self.signer.prepare(job.task, canonical_body(args, kwargs)))

    def _build_shape(self) -> _Template:
        """One message built by kombu, with a placeholder wherever a job or a fire differs."""
        sample_job = JobSpec(
            name="sample", task="sample", kind="at", schedule="", timezone=ZoneInfo("UTC"),
            trigger=AtTrigger(utc(0)), queue="sample",
        )  # fmt: skip
        sample = self.kombu_push(sample_job, 0, 0)
        message = json.loads(sample.payload)
        headers, properties = message["headers"], message["properties"]
        headers["id"] = headers["root_id"] = properties["correlation_id"] = _ID
        headers[HEADER_SLOT], headers[HEADER_TOKEN] = _SLOT, _TOKEN
        headers[HEADER_JOB], headers["task"] = _JOB, _TASK
        places: tuple[str, ...] = _PLACES
        if self.signer is not None:
            headers[HEADER_SIGNATURE] = _SIG
            places = (*_PLACES, _SIG)
        headers["argsrepr"], headers["kwargsrepr"] = _ARGSREPR, _KWARGSREPR
        message["body"] = _BODY
        properties["delivery_info"]["routing_key"] = _QUEUE
        properties["delivery_tag"] = _TAG
        pieces = tuple(_PLACEHOLDER.split(json.dumps(message)))
        names = pieces[1::2]
        if sorted(names) != sorted(places):
            raise RuntimeError(f"unexpected message layout from kombu: {names!r}")
        return _Template("", pieces)

    def kombu_push(self, job: JobSpec, slot_s: int, token: int) -> RedisPush:
        """The exact LPUSH kombu's Redis transport runs for this fire, built by kombu itself."""
        return self._capture_push(self.publish_arguments(job, slot_s, token), job.queue)

    def _capture_push(self, arguments: dict[str, Any], queue: str) -> RedisPush:
        """The LPUSH of one message. Captured on Redis as sent to its queue through the
        anonymous exchange (kombu's Redis transport would read bindings for any other); a
        message for a broker that routes says its exchange and routing key in delivery_info,
        which the outbox's publisher sends it with."""
        route = arguments["exchange"], arguments["routing_key"]
        with self._capture_lock:  # one capturing channel, shared by the warm-up and the engine
            producer, capture = self._capturing_producer()
            with producer.batch():
                producer.publish(**{**arguments, "exchange": "", "routing_key": queue})
            commands, capture.commands = capture.commands, []
        pushes = [args for name, args in commands if name == "lpush"]
        if len(pushes) != 1 or len(commands) != 1:
            raise RuntimeError(f"kombu produced unexpected Redis commands: {commands!r}")
        key, payload = pushes[0]
        body = payload if isinstance(payload, bytes) else str(payload).encode()
        if route != ("", queue):
            message = json.loads(body)
            message["properties"]["delivery_info"].update(exchange=route[0], routing_key=route[1])
            body = json.dumps(message).encode()
        return RedisPush(self.key_prefix + str(key), body)

    def _capturing_producer(self) -> tuple[Producer, _CapturedBatch]:
        if self._capture_producer is None or self._capture is None:
            self._capture_connection = self._capture_app.connection_for_write()
            channel = self._capture_connection.channel()
            capture = _CapturedBatch(channel, self.key_prefix)
            channel.create_publish_batch = lambda max_size: capture
            self._capture = capture
            self._capture_producer = Producer(channel, exchange=Exchange(""), auto_declare=False)
        return self._capture_producer, self._capture

    def use_jobs(self, jobs: Iterable[JobSpec]) -> None:
        """Declare queues as the workers do, from the config file's `jobs` (what workers read):
        a priority queue with its x-max-priority, a routed one with its exchange's bindings."""
        declarations = queue_declarations(jobs)
        self._declarations = {found.name: found for found in declarations}
        bound: dict[tuple[str, str], list[QueueDeclaration]] = {}
        for found in declarations:
            for pair in found.bindings:
                bound.setdefault(pair, []).append(found)
        self._bound = bound

    def queue(self, name: str) -> Queue:
        """The queue as the workers declare it, so the first publish to a new queue is kept."""
        found = self._declarations.get(name)
        if found is not None:
            return kombu_queue(found)
        return Queue(name, Exchange(name, "direct"), routing_key=name)

    def queues_for(self, exchange: str, routing_key: str) -> list[Queue]:
        """What to declare before publishing through `exchange` with `routing_key`: through
        the default exchange the key names the queue; through a named one, the config's
        queues bound to it (none known: the deployment's own bindings decide)."""
        if exchange == "":
            return [self.queue(routing_key)]
        return [kombu_queue(found) for found in self._bound.get((exchange, routing_key), [])]

    def close(self) -> None:
        if self._capture_connection is not None:
            self._capture_connection.release()
        self._capture_connection = self._capture_producer = self._capture = None


def expiry(job: JobSpec, slot_s: int) -> str:
    """The `expires` header of a fire (ISO 8601, as Celery writes it): the slot plus the
    job's expires, or for "next" the job's next slot after this one."""
    slot = datetime.fromtimestamp(slot_s, UTC)
    if job.expires == "next":
        following = job.trigger.next_slot(slot)
        return _NO_NEXT_SLOT if following is None else following.isoformat()
    assert isinstance(job.expires, timedelta)
    return (slot + job.expires).isoformat()


def group_id(namespace: str, job: str, slot_s: int) -> str:
    """The Celery group id of a group job's fire: deterministic in (job, slot)."""
    return task_id_of_text(namespace, job, f"{slot_text(slot_s)}/group")
