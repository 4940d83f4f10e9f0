"""The shell around the leader loop, in process: outbox publishing, the stop order, the
watchdog and lease gated by the loop, Redis's eviction policy."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from scheduler import lease as leases
from scheduler.clock import SystemClock
from scheduler.config import load_config
from scheduler.node import LOOP_STALL_TTLS, Node
from tests.conftest import RedisServer
from tests.integration.harness import write_config
from tests.node.conftest import QUEUE, Rig

RigFactory = Callable[..., Rig]


def every_second(queue: str = QUEUE, **extra: object) -> dict[str, object]:
    return {"task": "jobs.examples.ping", "every": "1s", "queue": queue, **extra}


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)  # poll: these are other threads' or Redis's doings, no event to await


# -- case 7: the outbox dropped entries of jobs the draining node did not know --------------


@pytest.fixture
def amqp_queue(rabbitmq_url: str) -> Iterator[str]:
    name = f"test-outbox-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(rabbitmq_url, connect_timeout=5) as connection:
        connection.default_channel.queue_delete(name)
        connection.default_channel.exchange_delete(name)


@pytest.mark.integration
def test_an_outbox_entry_of_a_job_this_node_lacks_is_published_all_the_same(
    rig_factory: RigFactory, rabbitmq_url: str, amqp_queue: str
) -> None:
    """A rolling deploy: the old leader claimed a slot of `gone`; the new leader's config no
    longer has it. The entry is the message itself, so the new leader publishes it."""
    old = rig_factory(
        {"gone": every_second(queue=amqp_queue)}, broker_url=rabbitmq_url, name="old.toml"
    )
    new = rig_factory(
        {"kept": every_second(queue=amqp_queue)}, broker_url=rabbitmq_url, name="new.toml",
        node_id="n2", clock=old.clock,
    )  # fmt: skip
    old.lead()
    old.tick()
    assert [job for job, _ in old.outbox()] == ["gone"]
    old.node.lease.release()
    new.lead()
    assert new.node.lease.value is not None
    assert new.node.publisher.drain(new.node.lease.value) == 1
    new.node.publisher.close()
    assert new.outbox() == []
    with Connection(rabbitmq_url, connect_timeout=5) as connection:
        queue = Queue(amqp_queue, Exchange(amqp_queue, "direct"), routing_key=amqp_queue)
        with connection.SimpleQueue(queue) as simple:
            message = simple.get(timeout=5)
            message.ack()
    slot = old.fired.__self__.outbox
    assert slot is not None
    assert message.headers["scheduler_job"] == "gone"
    assert message.headers["task"] == "jobs.examples.ping"
    assert message.properties["correlation_id"] == message.headers["id"]
    assert message.decode() == [[], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                         "chord": None}]  # fmt: skip


# -- case 8: a planned stop released the lease before the publisher stopped -----------------


def test_a_planned_stop_stops_the_publisher_before_it_releases_the_lease(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while the publisher is between publishing an entry and removing it: the lease
    stays held until the publisher is done, so its removal is not refused and the next
    leader does not send the entry again."""
    caplog.set_level(logging.INFO)
    path = write_config(
        tmp_path / "scheduler.toml", redis_url=redis_server.url, jobs={"a": every_second()},
        lease_ttl="1s",
    )  # fmt: skip
    # Another database of the same server: a broker that is not the state, so an outbox.
    path.write_text(
        path.read_text().replace(
            f'broker_url = "{redis_server.url}"',
            f'broker_url = "{redis_server.url.replace("/0", "/1")}"',
        )
    )
    node = Node(load_config(path), "n1", SystemClock())
    publish = node.publisher._publish
    inside, proceed = threading.Event(), threading.Event()

    def publish_and_wait(raw: bytes) -> None:
        publish(raw)
        if not inside.is_set():
            inside.set()
            proceed.wait(timeout=10)  # stays "published, not yet removed" until told

    node.publisher._publish = publish_and_wait  # type: ignore[method-assign]
    state = redis_server.client()
    runner = threading.Thread(target=node.run, name="node")
    runner.start()
    try:
        assert inside.wait(timeout=15), "nothing was published"
        node.request_stop()
        deadline = time.monotonic() + 1.5
        while state.exists("it:lease") and time.monotonic() < deadline:
            time.sleep(0.02)  # would the lease go while the publisher is mid-batch?
        released_early = not state.exists("it:lease")
    finally:
        proceed.set()
        node.request_stop()
        runner.join(timeout=15)
    assert not runner.is_alive()
    assert not released_early
    assert state.llen("it:outbox") == 0  # removed under the lease: nothing left to send again
    broker = redis_server.client()
    broker.execute_command("SELECT", 1)
    sent = broker.lrange(QUEUE, 0, -1)
    assert len(sent) == len(set(sent)) >= 1
    lines = [record.getMessage() for record in caplog.records]
    assert lines.index("outbox publisher stopped") < lines.index("lease released by node n1")


# -- case 11: a stuck loop kept the lease and the watchdog going ----------------------------


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    states = []
    while True:
        try:
            states.append(sock.recv(4096).decode())
        except TimeoutError:
            return states


def test_a_stuck_loop_gives_up_the_lease_and_stops_the_watchdog(
    rig_factory: RigFactory, notify_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    rig.lead()
    assert received(notify_socket) == ["READY=1", "STATUS=standby, no leader", "WATCHDOG=1"]
    rig.node.heartbeat.beat()
    assert [s for s in received(notify_socket) if not s.startswith("STATUS=")] == ["WATCHDOG=1"]
    # The loop stops turning (a hung call, a deadlock) for longer than LOOP_STALL_TTLS TTLs.
    rig.clock.mono_s += LOOP_STALL_TTLS * rig.node.lease.ttl_ms / 1000 + 0.1
    assert not rig.node.loop_alive()
    rig.node.heartbeat.beat()
    assert [
        s for s in received(notify_socket) if not s.startswith("STATUS=")
    ] == []  # systemd's watchdog will restart the process
    stop, changed = threading.Event(), threading.Event()
    keeper = threading.Thread(
        target=leases.keep, args=(rig.node.lease, stop, changed, rig.node.may_lead)
    )
    keeper.start()
    try:
        wait_for(lambda: not rig.redis.exists("it:lease"), "the stuck leader to release")
    finally:
        stop.set()
        keeper.join(timeout=5)
    assert "giving up the lease: this node may not lead now" in [
        record.getMessage() for record in caplog.records
    ]


# -- case 12: an eviction policy other than noeviction can evict the lease ------------------


def test_an_eviction_policy_is_logged_loudly_and_shown_in_the_record(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory({"a": every_second()})
    rig.redis.config_set("maxmemory-policy", "allkeys-lru")
    heartbeat = rig.node.heartbeat
    heartbeat.beat()
    assert heartbeat.record()["maxmemory_policy"] == "allkeys-lru"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "Redis maxmemory-policy is allkeys-lru, not noeviction: under memory pressure Redis may "
        "evict the lease, watermarks or outbox (slots fired twice or lost); set "
        "maxmemory-policy noeviction on this server"
    ]
    rig.redis.config_set("maxmemory-policy", "noeviction")
    rig.clock.mono_s += 61  # read again once a minute
    heartbeat.beat()
    assert heartbeat.record()["maxmemory_policy"] == "noeviction"
    assert "Redis maxmemory-policy is noeviction again" in [r.getMessage() for r in caplog.records]
