"""Messages of jobs with issue 12's options: the template filled for a fire equals what kombu
builds from Celery's own as_task_v2 for the same fire, and carries each option where a stock
worker reads it (headers, properties, the chain embed, a group's messages)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobspec import JobSpec, build_job
from scheduler.messages import MessageFactory
from scheduler.wire import HEADER_JOB_HASH, job_hash, task_id
from tests.conftest import RedisServer

SLOT = 1_800_000_000  # 2027-01-15T08:00:00Z
TOKEN = 7


def spec(name: str, **table: Any) -> JobSpec:
    problems: list[str] = []
    table.setdefault("every", "1m")
    built = build_job(Path("s.toml"), name, table, ZoneInfo("UTC"), problems, "ns")
    assert built is not None, problems
    return built


def parsed(payload: bytes) -> dict[str, Any]:
    message = json.loads(payload)
    assert uuid.UUID(message["properties"].pop("delivery_tag"))
    return message


def body(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


OPTION_JOBS = [
    spec("prio", task="t.a", priority=9, queue="q"),
    spec("routed", task="t.a", routing_key="img", exchange="media"),
    spec("headers", task="t.a", headers={"tenant": "acme", "n": [1, 2]}),
    spec("expires", task="t.a", expires="30s"),
    spec("next", task="t.a", expires="next"),
    spec("limits", task="t.a", soft_time_limit="5s", time_limit="10s", ignore_result=True),
    spec("chain", chain=[{"task": "jobs.examples.add", "args": [4, 4]},
                         {"task": "jobs.examples.mul", "args": [8]},
                         {"task": "t.log", "immutable": True}]),
    spec("group", group=[{"task": "t.a", "args": [1]}, {"task": "t.b", "kwargs": {"k": 2}}]),
    spec("shell", command=["echo", "hi"], retries=2, retry_delay="3s", retry_backoff=True),
    spec("http", http={"url": "https://example.com/hook"}),
]  # fmt: skip


def reference(factory: MessageFactory, job: JobSpec) -> list[dict[str, Any]]:
    """What kombu builds from as_task_v2 for every message of the fire."""
    return [
        parsed(factory._capture_push(arguments, job.queue).payload)
        for arguments in factory.message_arguments(job, SLOT, TOKEN)
    ]


@pytest.mark.parametrize("job", OPTION_JOBS, ids=lambda job: job.name)
def test_the_template_equals_what_kombu_builds(redis_server: RedisServer, job: JobSpec) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    pushes = factory.redis_pushes(job, SLOT, TOKEN)
    assert [parsed(push.payload) for push in pushes] == reference(factory, job)
    assert factory.redis_push(job, SLOT, TOKEN).key == pushes[0].key
    first = json.loads(pushes[0].payload)["headers"]
    assert first["id"] == task_id("ns", job.name, SLOT)
    assert first["scheduler_slot"] == "2027-01-15T08:00:00Z"
    assert first["scheduler_token"] == "7"


def headers_of(job: JobSpec, url: str) -> list[dict[str, Any]]:
    factory = MessageFactory("ns", url, {})
    return [json.loads(push.payload)["headers"] for push in factory.redis_pushes(job, SLOT, 1)]


def test_priority_goes_where_kombus_redis_worker_reads_it(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    pushes = {p: factory.redis_push(spec("p", task="t", priority=p), SLOT, 1) for p in (0, 5, 9)}
    # kombu's default priority_steps [0, 3, 6, 9]: 5 shares the sub-queue of 3.
    assert {p: push.key for p, push in pushes.items()} == {
        0: "celery",
        5: "celery\x06\x163",
        9: "celery\x06\x169",
    }
    assert json.loads(pushes[9].payload)["properties"]["priority"] == 9


def test_options_become_celery_headers(redis_server: RedisServer) -> None:
    (limits,) = headers_of(OPTION_JOBS[5], redis_server.url)
    assert limits["timelimit"] == [10.0, 5.0]  # Celery's order: [hard, soft]
    assert limits["ignore_result"] is True
    (extra,) = headers_of(OPTION_JOBS[2], redis_server.url)
    assert (extra["tenant"], extra["n"], extra["scheduler_job"]) == ("acme", [1, 2], "headers")
    (expires,) = headers_of(OPTION_JOBS[3], redis_server.url)
    assert expires["expires"] == "2027-01-15T08:00:30+00:00"
    (following,) = headers_of(OPTION_JOBS[4], redis_server.url)
    assert following["expires"] == "2027-01-15T08:01:00+00:00"  # the next slot of every 1m


def test_built_in_jobs_carry_their_hash_and_retries(redis_server: RedisServer) -> None:
    shell, http = OPTION_JOBS[8], OPTION_JOBS[9]
    (shell_headers,) = headers_of(shell, redis_server.url)
    assert shell_headers["task"] == "jobs.builtin.shell"
    assert shell_headers[HEADER_JOB_HASH] == job_hash(shell.fingerprint())
    assert shell_headers["scheduler_retries"] == {"retries": 2, "delay_s": 3.0, "backoff": True}
    (http_headers,) = headers_of(http, redis_server.url)
    assert http_headers[HEADER_JOB_HASH] == job_hash(http.fingerprint())
    assert "scheduler_retries" not in http_headers
    (plain,) = headers_of(OPTION_JOBS[0], redis_server.url)
    assert HEADER_JOB_HASH not in plain


def test_a_chain_embeds_the_rest_as_celery_does(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    (push,) = factory.redis_pushes(OPTION_JOBS[6], SLOT, 1)
    message = json.loads(push.payload)
    assert message["headers"]["task"] == "jobs.examples.add"
    args, kwargs, embed = body(message)
    assert (args, kwargs) == ([4, 4], {})
    rest = [(s["task"], s["args"], s["immutable"]) for s in embed["chain"]]
    assert rest == [("t.log", [], True), ("jobs.examples.mul", [8], False)]  # last first


def test_a_group_sends_one_message_per_step(redis_server: RedisServer) -> None:
    job = OPTION_JOBS[7]
    first, second = headers_of(job, redis_server.url)
    assert first["id"] == task_id("ns", "group", SLOT)
    assert second["id"] == str(uuid.uuid5(uuid.UUID(first["id"]), "1"))
    assert first["group"] == second["group"] != first["id"]
    assert (first["group_index"], second["group_index"]) == (0, 1)
    assert (first["task"], second["task"]) == ("t.a", "t.b")
    assert headers_of(job, redis_server.url) == [first, second]  # a repeated fire: same ids


def test_on_redis_the_message_goes_to_its_queue_whatever_its_routing(
    redis_server: RedisServer,
) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    push = factory.redis_push(OPTION_JOBS[1], SLOT, 1)
    assert push.key == "celery"
    route = json.loads(push.payload)["properties"]["delivery_info"]
    assert route == {"exchange": "", "routing_key": "celery"}


def test_for_amqp_the_message_names_its_exchange_and_routing_key(
    redis_server: RedisServer,
) -> None:
    factory = MessageFactory(
        "ns", "amqp://guest:guest@127.0.0.1:5672//", {}, state_url=redis_server.url
    )
    job = OPTION_JOBS[1]
    (arguments,) = factory.message_arguments(job, SLOT, 1)
    assert (arguments["exchange"], arguments["routing_key"]) == ("media", "img")
    route = json.loads(factory.redis_push(job, SLOT, 1).payload)["properties"]["delivery_info"]
    assert route == {"exchange": "media", "routing_key": "img"}
    (prio,) = factory.message_arguments(OPTION_JOBS[0], SLOT, 1)
    assert prio["priority"] == 9
