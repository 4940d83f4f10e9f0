"""What a node tells systemd, read from a real unix datagram socket the test binds as
$NOTIFY_SOCKET: READY=1 once joined, STATUS= on change only, WATCHDOG=1 while the loop turns.

The heartbeat sends synchronously, so after `beat()` returns its datagrams are queued on the
socket: the test drains it without waiting."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scheduler import sdnotify
from scheduler.sdnotify import coarse_wait, status_text
from tests.clocks import ManualClock
from tests.integration.harness import every_second

from .conftest import Rig

MakeRig = Callable[..., Rig]
JOBS = {"tick": every_second()}


@dataclass
class Listener:
    """The systemd side of the notify protocol: every datagram received so far."""

    sock: socket.socket

    def drain(self) -> list[str]:
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def statuses(self) -> list[str]:
        return [m.removeprefix("STATUS=") for m in self.drain() if m.startswith("STATUS=")]


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield Listener(sock)


def written_record(rig: Rig) -> dict[str, Any]:
    """This node's heartbeat record as the beat wrote it to Redis."""
    record: dict[str, Any] = rig.node.heartbeat.store.read_nodes().value[rig.node.node_id]
    return record


# --- in process, a real node on a private redis-server ---------------------------------------


def test_ready_comes_after_the_first_beat_and_only_once(
    rig_factory: MakeRig, listener: Listener
) -> None:
    rig = rig_factory(JOBS)
    assert listener.drain() == []  # a node that has not beaten yet has not joined
    assert rig.node.heartbeat.joined is False
    rig.node.heartbeat.beat()
    assert listener.drain() == ["READY=1", "STATUS=standby, no leader", "WATCHDOG=1"]
    assert rig.node.heartbeat.joined is True
    rig.node.heartbeat.beat()
    assert listener.drain() == ["WATCHDOG=1"]  # nothing changed: no READY, no STATUS again


def test_leader_status_names_jobs_and_next_fire_and_is_sent_on_change_only(
    rig_factory: MakeRig, listener: Listener
) -> None:
    rig = rig_factory({"tick": every_second(), "tock": every_second()})
    rig.lead()
    listener.drain()
    rig.node.heartbeat.beat()
    record = written_record(rig)
    wait = coarse_wait(record["next_slot_at"] - record["seen_at"])
    assert listener.statuses() == [f"leader, 2 jobs, next in {wait}"]
    assert re.fullmatch(r"[01] s", wait), wait  # a job every second is due within a second
    rig.node.heartbeat.beat()
    assert listener.statuses() == []  # the same text is not sent again


def test_standby_names_the_lease_holder(rig_factory: MakeRig, listener: Listener) -> None:
    leader = rig_factory(JOBS, name="n2.toml", node_id="n2")
    standby = rig_factory(JOBS, node_id="n1")
    leader.lead()
    listener.drain()
    standby.node.heartbeat.beat()
    assert listener.statuses() == ["standby behind n2"]


def test_restart_needed_is_appended(rig_factory: MakeRig, listener: Listener) -> None:
    rig = rig_factory(JOBS)
    rig.node.restart_needed = ("lease_ttl", "outbox_max")
    rig.node.heartbeat.beat()
    assert listener.statuses() == ["standby, no leader; restart needed for: lease_ttl, outbox_max"]


def test_redis_unreachable_is_the_status_and_the_node_is_no_longer_joined(
    rig_factory: MakeRig, listener: Listener
) -> None:
    rig = rig_factory(JOBS)
    rig.node.heartbeat.beat()
    listener.drain()
    rig.redis.shutdown(nosave=True)  # the private redis-server stops for good
    rig.node.heartbeat.beat()
    messages = listener.drain()
    assert messages[0].startswith("STATUS=Redis unreachable: "), messages
    assert "127.0.0.1" in messages[0]
    # The process is alive even when Redis is not: the watchdog keeps being fed.
    assert messages[1:] == ["WATCHDOG=1"]
    assert rig.node.heartbeat.joined is False
    # The first failure may be the pooled connection being reset, the next a refused one;
    # from then on the text stays the same and is not sent again.
    rig.node.heartbeat.beat()
    assert all(text.startswith("Redis unreachable: ") for text in listener.statuses())
    rig.node.heartbeat.beat()
    assert listener.drain() == ["WATCHDOG=1"]


def test_a_clock_off_redis_says_so(rig_factory: MakeRig, listener: Listener) -> None:
    rig = rig_factory(JOBS, clock=ManualClock(wall_s=time.time() + 10.0))
    rig.node.heartbeat.beat()
    assert rig.node.heartbeat.clock_ok is False
    offset_s = written_record(rig)["clock_offset_ms"] / 1000
    assert -10.5 < offset_s < -9.5
    (only,) = listener.statuses()
    assert only == f"clock off Redis TIME by {offset_s:+.1f} s: not leading"
    assert re.fullmatch(r"clock off Redis TIME by -(9\.\d|10\.\d) s: not leading", only)


def test_watchdog_only_while_the_main_loop_turns(rig_factory: MakeRig, listener: Listener) -> None:
    rig = rig_factory(JOBS)
    rig.node.heartbeat.beat()
    assert "WATCHDOG=1" in listener.drain()
    rig.clock.mono_s += 60.0  # the loop's last turn is a minute old: it looks stuck
    assert not rig.node.loop_alive()
    rig.node.heartbeat.beat()
    assert "WATCHDOG=1" not in listener.drain()
    rig.node.turn()  # the loop turns again
    rig.node.heartbeat.beat()
    assert listener.drain() == ["WATCHDOG=1"]


def test_stopping_is_the_last_word(rig_factory: MakeRig, listener: Listener) -> None:
    rig = rig_factory(JOBS)
    rig.node.heartbeat.beat()
    listener.drain()
    rig.node.heartbeat.stopping()
    rig.node.restart_needed = ("lease_ttl",)  # a status change that is not sent any more
    rig.node.heartbeat.beat()
    assert listener.drain() == ["STOPPING=1"]


def test_reloading_carries_clock_monotonic_in_microseconds(listener: Listener) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.ready()
    assert sdnotify.stopping()
    reloading, ready, stopping = listener.drain()
    first, second = reloading.split("\n")
    assert first == "RELOADING=1"
    key, _, usec = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(usec) <= after
    assert (ready, stopping) == ("READY=1", "STOPPING=1")


def test_a_status_keeps_to_one_line(listener: Listener) -> None:
    assert sdnotify.status("Redis unreachable: first\nsecond")
    assert listener.drain() == ["STATUS=Redis unreachable: first second"]


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    assert sdnotify.watchdog() is False  # a failed send is not an error


# --- the status line, pure ---------------------------------------------------------------


def record(**facts: object) -> dict[str, object]:
    base: dict[str, object] = {
        "node_id": "n1",
        "clock_ok": True,
        "clock_offset_ms": 1.5,
        "leader": False,
        "jobs": 42,
        "next_slot_at": None,
        "seen_at": 1_800_000_000.25,
        "restart_needed": [],
    }
    return {**base, **facts}


@pytest.mark.parametrize(
    ("facts", "holder", "text"),
    [
        ({"leader": True, "next_slot_at": 1_800_000_003}, None, "leader, 42 jobs, next in 3 s"),
        ({"leader": True, "jobs": 1}, None, "leader, 1 job, nothing due"),
        ({}, "node-2", "standby behind node-2"),
        ({}, None, "standby, no leader"),
        ({}, "n1", "standby, no leader"),
        ({"clock_ok": False, "clock_offset_ms": 2149.0}, "n2", "clock off Redis TIME by +2.1 s: not leading"),
        ({"clock_ok": False, "clock_offset_ms": -7000.0, "leader": True}, None, "clock off Redis TIME by -7.0 s: not leading"),
        ({"restart_needed": ["lease_ttl"]}, "n2", "standby behind n2; restart needed for: lease_ttl"),
    ],
)  # fmt: skip
def test_status_text(facts: dict[str, object], holder: str | None, text: str) -> None:
    assert status_text(record(**facts), holder) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2.0, "0 s"), (0.2, "1 s"), (3.0, "3 s"), (9.5, "10 s"), (10.0, "10 s"), (10.1, "20 s"),
        (59.0, "60 s"), (60.0, "1 min"), (61.0, "2 min"), (3599.0, "60 min"), (3600.0, "1 h"),
        (47 * 3600.0, "47 h"), (48 * 3600.0, "2 d"), (9 * 86400.0 + 1, "10 d"),
    ],
)  # fmt: skip
def test_coarse_wait(seconds: float, text: str) -> None:
    assert coarse_wait(seconds) == text


def test_a_record_read_back_from_json_gives_the_same_text() -> None:
    leader = record(leader=True, next_slot_at=1_800_000_100)
    assert status_text(json.loads(json.dumps(leader)), None) == "leader, 42 jobs, next in 2 min"
