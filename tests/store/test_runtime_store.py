"""Runtime jobs in a real Redis: round trip, the version moved by every change (and only by a
change), the compare-and-set of edits, the watermark a new job starts from, and values or
keys that are not what we wrote."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis

from scheduler.config import Config, load_config
from scheduler.connections import redis_client
from scheduler.errors import StateCorrupt, StoreUnavailable
from scheduler.store.keys import Keys
from scheduler.store.runtime import (
    Expect,
    RuntimeJobStore,
    RuntimeWatch,
    WriteResult,
    load_runtime_jobs,
)
from scheduler.store.state import StateStore
from tests.clocks import ManualClock
from tests.conftest import RedisServer, free_port
from tests.integration.harness import write_config

KEYS = Keys("rt")
PING = {"task": "jobs.examples.ping", "every": "1s", "queue": "parked"}


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis_server.client()


@pytest.fixture
def store(client: redis.Redis) -> RuntimeJobStore:
    return RuntimeJobStore(client, KEYS)


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer) -> Config:
    path = write_config(
        tmp_path / "scheduler.toml", redis_url=redis_server.url, namespace="rt",
        jobs={"daily": {"task": "t.daily", "cron": "0 9 * * *"}},
    )  # fmt: skip
    return load_config(path, env={})


def version(client: redis.Redis) -> int:
    return int(client.get(KEYS.runtime_version))  # type: ignore[arg-type]


def test_round_trip_and_every_change_moves_the_version(
    store: RuntimeJobStore, client: redis.Redis, config: Config
) -> None:
    assert store.version() is None
    assert store.put("ping", PING, Expect.ABSENT) == WriteResult(done=True, existed=False)
    first = version(client)
    assert json.loads(client.hget(KEYS.runtime_jobs, "ping")) == PING  # type: ignore[arg-type]
    assert store.read() == ({"ping": json.dumps(PING, separators=(",", ":")).encode()}, [])

    # Refused writes change nothing, the version included.
    assert store.put("ping", PING, Expect.ABSENT) == WriteResult(done=False, existed=True)
    assert store.put("ping", PING, Expect.EQUAL, b"{}") == WriteResult(done=False, existed=True)
    assert store.remove("absent") == WriteResult(done=False, existed=False)
    assert version(client) == first

    changed = {**PING, "every": "2s"}
    current = store.get("ping")
    assert current is not None
    assert store.put("ping", changed, Expect.EQUAL, current) == WriteResult(True, True)
    assert version(client) == first + 1
    assert store.put("ping", PING, Expect.ANY) == WriteResult(True, True)
    assert version(client) == first + 2
    loaded = load_runtime_jobs(store, KEYS, config)
    assert (sorted(loaded.jobs), loaded.problems, loaded.readable) == (["ping"], [], True)
    assert loaded.jobs["ping"].schedule == "1s"
    assert store.remove("ping") == WriteResult(True, True)
    assert version(client) == first + 3
    assert store.read() == ({}, [])


def test_a_new_job_starts_from_redis_time_and_a_replaced_one_keeps_its_watermark(
    store: RuntimeJobStore, client: redis.Redis
) -> None:
    client.hset(KEYS.watermarks, "ping", "1000")  # left by an earlier job of that name
    now_s = int(client.time()[0])
    store.put("ping", PING, Expect.ABSENT)
    mark = int(client.hget(KEYS.watermarks, "ping"))  # type: ignore[arg-type]
    assert now_s <= mark <= now_s + 1
    client.hset(KEYS.watermarks, "ping", "2000")  # a leader fired it since
    store.put("ping", {**PING, "every": "5s"}, Expect.ANY)
    assert client.hget(KEYS.watermarks, "ping") == b"2000"
    store.remove("ping")
    assert client.hget(KEYS.watermarks, "ping") == b"2000"  # harmless: no job reads it


def test_loaders_take_a_client_or_a_state_store_and_shadow_config_jobs(
    store: RuntimeJobStore, client: redis.Redis, config: Config
) -> None:
    store.put("daily", PING, Expect.ABSENT)  # as if the config gained the name later
    store.put("ping", PING, Expect.ABSENT)
    for source in (client, StateStore(client, KEYS), store):
        loaded = load_runtime_jobs(source, KEYS, config)
        assert (sorted(loaded.jobs), loaded.shadowed) == (["ping"], ["daily"])


@pytest.mark.parametrize("garbage", [b"x", b"-1", b"9" * 30, b""])
def test_a_version_that_is_not_a_counter_is_moved_aside_and_starts_anew(
    store: RuntimeJobStore, client: redis.Redis, garbage: bytes
) -> None:
    client.set(KEYS.runtime_version, garbage)
    assert store.put("ping", PING, Expect.ABSENT).done
    fresh = client.get(KEYS.runtime_version)
    assert fresh is not None
    assert fresh.isdigit()
    assert abs(int(fresh) / 1e6 - float(client.time()[0])) < 5  # microseconds of TIME
    [aside] = client.keys(f"{KEYS.runtime_version}:corrupt:*")
    assert client.get(aside) == garbage


def test_a_version_of_the_wrong_type_is_moved_aside(
    store: RuntimeJobStore, client: redis.Redis
) -> None:
    client.hset(KEYS.runtime_version, "a", "b")
    assert store.put("ping", PING, Expect.ABSENT).done
    assert client.type(KEYS.runtime_version) == b"string"
    [aside] = client.keys(f"{KEYS.runtime_version}:corrupt:*")
    assert client.type(aside) == b"hash"


def test_a_runtime_hash_of_the_wrong_type_is_named_and_never_written(
    store: RuntimeJobStore, client: redis.Redis, config: Config
) -> None:
    client.set(KEYS.runtime_jobs, "not a hash")
    with pytest.raises(StateCorrupt, match=r"^key rt:runtime_jobs holds a string, not a hash"):
        store.put("ping", PING, Expect.ABSENT)
    assert client.get(KEYS.runtime_version) is None
    assert client.hget(KEYS.watermarks, "ping") is None
    loaded = load_runtime_jobs(client, KEYS, config)
    assert (loaded.jobs, loaded.readable) == ({}, False)
    assert loaded.problems == [
        "runtime jobs: key rt:runtime_jobs holds a string, not a hash; not read"
    ]


def test_unreachable_redis_raises_store_unavailable(config: Config) -> None:
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable):
        load_runtime_jobs(dead, KEYS, config)
    with pytest.raises(StoreUnavailable):
        RuntimeJobStore(dead, KEYS).put("ping", PING, Expect.ABSENT)


def test_the_watch_reads_when_the_version_moves_and_keeps_the_last_good_set(
    store: RuntimeJobStore, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    watch = RuntimeWatch(store, clock, poll_s=0.5)
    assert watch.poll() is False  # nothing stored, nothing known: the same
    store.put("ping", PING, Expect.ABSENT)
    assert watch.poll() is False  # looked 0 s ago
    assert watch.due_in() == 0.5
    clock.advance(0.5)
    assert watch.poll() is True
    assert list(watch.stored) == ["ping"]
    clock.advance(0.5)
    assert watch.poll() is False  # the version did not move
    client.hset(KEYS.runtime_jobs, "sneaky", "{}")  # written without moving the version
    clock.advance(0.5)
    assert watch.poll() is False
    assert watch.poll(force=True) is True  # a take-over reads them all
    assert sorted(watch.stored) == ["ping", "sneaky"]

    caplog.set_level(logging.INFO)
    good = watch.store
    watch.store = RuntimeJobStore(redis_client(f"redis://127.0.0.1:{free_port()}/0"), KEYS)
    for _ in range(3):
        clock.advance(0.5)
        assert watch.poll() is False
    assert watch.poll(force=True) is False
    assert sorted(watch.stored) == ["ping", "sneaky"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert said[0].startswith("runtime jobs: could not read them (")
    assert said[0].endswith("; keeping the 2 known")
    watch.store = good
    clock.advance(0.5)
    assert watch.poll() is False  # the same version: nothing changed meanwhile
    assert [r.getMessage() for r in caplog.records][1:] == ["runtime jobs: readable again (2)"]

    client.delete(KEYS.runtime_jobs)
    client.set(KEYS.runtime_jobs, "oops")
    store_version = client.incr(KEYS.runtime_version)
    assert store_version
    clock.advance(0.5)
    assert watch.poll() is True  # its problem is news; the tables stay
    assert sorted(watch.stored) == ["ping", "sneaky"]
    assert watch.problems == [
        "runtime jobs: key rt:runtime_jobs holds a string, not a hash; not read"
    ]
