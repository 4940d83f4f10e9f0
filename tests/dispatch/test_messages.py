"""The message template against kombu itself: for every kind of job, a fire filled into the
template is the message kombu builds, field for field (the delivery tag is random in both)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobspec import JobSpec
from scheduler.messages import MessageFactory
from scheduler.signing import Signer, canonical_body
from scheduler.triggers import EveryTrigger
from scheduler.wire import HEADER_SIGNATURE, slot_text, task_id
from tests.conftest import RedisServer

SLOT = 1_800_000_000  # 2027-01-15T08:00:00Z


def job(name: str, **fields: Any) -> JobSpec:
    return JobSpec(
        name=name,
        task=fields.pop("task", "jobs.examples.hello"),
        kind="every",
        schedule="1s",
        timezone=ZoneInfo("UTC"),
        trigger=EveryTrigger(1, datetime(1970, 1, 1, tzinfo=UTC)),
        **fields,
    )


JOBS = [
    job("plain"),
    job("with-args", args=("world", 1, 2.5, None, True), kwargs={"dry_run": False}),
    job("unicode.é", args=('quote " and \\ backslash', "ünï ✓"), kwargs={"ключ": ["списки"]}),
    job("queue", task="app.tasks.report", queue="reports"),
    job("huge", args=("x" * 5000,), kwargs={"nested": {"deep": [[[[[[1]]]]]]}}),
]


def parsed(payload: bytes) -> dict[str, Any]:
    message = json.loads(payload)
    tag = message["properties"].pop("delivery_tag")
    assert uuid.UUID(tag)
    return message


@pytest.mark.parametrize("spec", JOBS, ids=lambda spec: spec.name)
@pytest.mark.parametrize("prefix", ["", "team-a:"])
def test_template_equals_what_kombu_builds(
    redis_server: RedisServer, spec: JobSpec, prefix: str
) -> None:
    options = {"global_keyprefix": prefix} if prefix else {}
    factory = MessageFactory("ns", redis_server.url, options)
    fast = factory.redis_push(spec, SLOT, 1_795_000_000_123)
    reference = factory.kombu_push(spec, SLOT, 1_795_000_000_123)
    assert fast.key == reference.key == prefix + spec.queue
    assert parsed(fast.payload) == parsed(reference.payload)
    headers = json.loads(fast.payload)["headers"]
    assert headers["id"] == task_id("ns", spec.name, SLOT)
    assert headers["scheduler_slot"] == "2027-01-15T08:00:00Z"
    assert headers["scheduler_token"] == "1795000000123"


def test_a_changed_job_gets_a_new_template(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    first = factory.redis_push(job("a", args=(1,)), SLOT, 1)
    second = factory.redis_push(job("a", args=(2,)), SLOT, 1)
    assert json.loads(first.payload)["headers"]["argsrepr"] == "[1]"
    assert json.loads(second.payload)["headers"]["argsrepr"] == "[2]"


def test_jobs_renamed_from_one_table_keep_their_own_names(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    first = JOBS[1]
    for name in ("copy-1", "copy-2"):
        renamed = first.renamed(name)
        fast = factory.redis_push(renamed, SLOT, 1)
        assert parsed(fast.payload) == parsed(factory.kombu_push(renamed, SLOT, 1).payload)
        assert json.loads(fast.payload)["headers"]["scheduler_job"] == name


@pytest.mark.parametrize("name", ["a", "nightly-report", "ünï.✓", "x" * 300])
def test_task_id_is_uuid5_of_the_slot_url(name: str) -> None:
    expected = uuid.uuid5(uuid.NAMESPACE_URL, f"scheduler://ns/{name}/2027-01-15T08:00:00Z")
    assert task_id("ns", name, SLOT) == str(expected)


def test_delivery_tags_are_unique(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    tags = {
        json.loads(factory.redis_push(JOBS[0], SLOT + i, 1).payload)["properties"]["delivery_tag"]
        for i in range(1000)
    }
    assert len(tags) == 1000


KEY = b"k" * 32


@pytest.mark.parametrize("spec", JOBS, ids=lambda spec: spec.name)
def test_a_signed_template_equals_what_kombu_builds(
    redis_server: RedisServer, spec: JobSpec
) -> None:
    factory = MessageFactory("ns", redis_server.url, {}, message_key=KEY)
    fast = factory.redis_push(spec, SLOT, 7)
    reference = factory.kombu_push(spec, SLOT, 7)
    assert parsed(fast.payload) == parsed(reference.payload)
    message = json.loads(fast.payload)
    signature = message["headers"][HEADER_SIGNATURE]
    body = json.loads(base64.b64decode(message["body"]))
    ident = task_id("ns", spec.name, SLOT)
    reason = Signer(KEY).verify(
        signature, spec.task, canonical_body(*body), spec.name, slot_text(SLOT), ident
    )
    assert reason is None
    # Another slot of the same job (the template is shared) is signed for that slot.
    later = json.loads(factory.redis_push(spec, SLOT + 60, 7).payload)["headers"]
    assert later[HEADER_SIGNATURE] != signature
    assert later[HEADER_SIGNATURE] == Signer(KEY).sign(
        spec.task, canonical_body(*body), spec.name, slot_text(SLOT + 60),
        task_id("ns", spec.name, SLOT + 60),
    )  # fmt: skip


def test_without_a_key_no_signature_header(redis_server: RedisServer) -> None:
    factory = MessageFactory("ns", redis_server.url, {})
    assert (
        HEADER_SIGNATURE not in json.loads(factory.redis_push(JOBS[1], SLOT, 1).payload)["headers"]
    )
