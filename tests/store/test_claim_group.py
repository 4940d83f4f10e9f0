"""A group job's fire against a real redis-server, claimed as the dispatcher claims it: every
member is pushed (or appended to the outbox) in the one claim, and every status of the fire
applies to all of them: all pushed, or none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.connections import redis_client
from scheduler.dispatch import Dispatcher
from scheduler.engine import Due
from scheduler.jobspec import JobSpec, build_job
from scheduler.lease import Lease
from scheduler.messages import MessageFactory
from scheduler.store.claims import Claims
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from scheduler.wire import member_id, task_id
from tests.clocks import ManualClock
from tests.conftest import RedisServer

KEYS = Keys("ns")
T0 = 1_700_000_000  # in the past: the claim's time fence lets it through
STEPS = [{"task": "t.a", "args": [1]}, {"task": "t.b", "args": [2]}, {"task": "t.c", "args": [3]}]


def spec(name: str, **table: Any) -> JobSpec:
    problems: list[str] = []
    table.setdefault("every", "1m")
    built = build_job(Path("s.toml"), name, table, ZoneInfo("UTC"), problems, "ns")
    assert built is not None, problems
    return built


GROUP = spec("fan", group=STEPS, queue="q")
PLAIN = spec("plain", task="t.p", queue="q")


@pytest.fixture
def store(redis_server: RedisServer) -> StateStore:
    return StateStore(redis_client(redis_server.url), KEYS)


@pytest.fixture
def leader(redis_server: RedisServer) -> Lease:
    held = Lease(redis_client(redis_server.url), KEYS, "a", timedelta(seconds=5), ManualClock())
    assert held.try_acquire()
    return held


@pytest.fixture
def factory(redis_server: RedisServer) -> Iterator[MessageFactory]:
    made = MessageFactory("ns", redis_server.url, {})
    yield made
    made.close()


def send(dispatcher: Dispatcher, leader: Lease, *fires: tuple[JobSpec, int]) -> list[str]:
    """Claim `fires` as the node does; the outcome of each fire not enqueued."""
    assert leader.value is not None
    assert leader.token is not None
    sent = dispatcher.send(leader.value, leader.token, Due(fires=list(fires)))
    assert sent.fired == len(fires) - len(sent.not_enqueued)
    return [outcome for _, _, outcome in sent.not_enqueued]


def queued_tasks(store: StateStore, key: str) -> list[tuple[str, str, int | None]]:
    """(task, id, group_index) of each message in the list, oldest (first consumed) first."""
    found = []
    for raw in reversed(store.client.lrange(key, 0, -1)):
        headers = json.loads(raw)["headers"]
        found.append((headers["task"], headers["id"], headers.get("group_index")))
    return found


def members(slot_s: int) -> list[tuple[str, str, int | None]]:
    ident = task_id("ns", "fan", slot_s)
    return [(step["task"], member_id(ident, i), i) for i, step in enumerate(STEPS)]


def test_a_group_pushes_every_member_once_and_a_resent_claim_nothing_more(
    store: StateStore, leader: Lease, factory: MessageFactory
) -> None:
    dispatcher = Dispatcher(Claims(store.client, KEYS), factory, atomic=True, outbox_cap=0)
    assert send(dispatcher, leader, (GROUP, T0), (PLAIN, T0)) == []
    assert queued_tasks(store, "q")[:3] == members(T0)
    assert [task for task, _, _ in queued_tasks(store, "q")] == ["t.a", "t.b", "t.c", "t.p"]
    # Resent (a retry after a lost reply): already ours, no member pushed again.
    assert send(dispatcher, leader, (GROUP, T0)) == ["already_fired"]
    assert store.client.llen("q") == 4
    assert store.client.xlen(KEYS.history) == 2  # one history entry per fire, not per member
    assert send(dispatcher, leader, (GROUP, T0 + 60)) == []
    assert queued_tasks(store, "q")[4:] == members(T0 + 60)


def test_a_paused_group_pushes_no_member(
    store: StateStore, leader: Lease, factory: MessageFactory
) -> None:
    dispatcher = Dispatcher(Claims(store.client, KEYS), factory, atomic=True, outbox_cap=0)
    store.set_paused("fan", True)
    assert send(dispatcher, leader, (GROUP, T0)) == ["skipped_paused"]
    assert store.client.llen("q") == 0
    assert store.watermarks() == {"fan": T0}


def test_a_member_queue_of_the_wrong_type_makes_the_whole_fire_corrupt(
    store: StateStore, leader: Lease, factory: MessageFactory
) -> None:
    store.client.set("q", "not a list")
    dispatcher = Dispatcher(Claims(store.client, KEYS), factory, atomic=True, outbox_cap=0)
    assert send(dispatcher, leader, (GROUP, T0)) == ["corrupt"]
    assert store.client.get("q") == b"not a list"
    assert store.watermarks() == {}


def test_outbox_mode_appends_every_member_and_refuses_the_whole_fire_when_full(
    redis_server: RedisServer, store: StateStore, leader: Lease
) -> None:
    # Another broker: the messages go to the outbox, built against the state's Redis.
    factory = MessageFactory("ns", "amqp://guest:guest@127.0.0.1:1//", {}, redis_server.url)
    try:
        dispatcher = Dispatcher(Claims(store.client, KEYS), factory, atomic=False, outbox_cap=3)
        assert send(dispatcher, leader, (PLAIN, T0), (GROUP, T0)) == []
        entries = [json.loads(raw)["headers"] for raw in store.client.lrange(KEYS.outbox, 0, -1)]
        assert [(h["task"], h["id"], h.get("group_index")) for h in entries[1:]] == members(T0)
        # Admitted while the outbox had room for one: 4 entries now, past the cap of 3.
        assert store.outbox_size() == 4
        assert send(dispatcher, leader, (GROUP, T0)) == ["already_fired"]
        assert send(dispatcher, leader, (GROUP, T0 + 60)) == ["outbox_full"]
        assert store.outbox_size() == 4
        assert store.client.llen("q") == 0
    finally:
        factory.close()
