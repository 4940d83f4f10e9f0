"""Scheduler nodes and Celery workers for chaos tests: the integration harness's `Cluster`, plus
per-node environment and flags (a node behind its own proxy, a node with a skewed clock),
restarts under the same node id, and fast reads of the lease straight from Redis."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from scheduler.errors import StoreUnavailable
from scheduler.lease import LeaseHolder, read_holder
from scheduler.store.keys import Keys
from tests.integration.harness import Child, Cluster, fired_messages, slot_text

from .observe import (
    AmqpQueueReader,
    Claim,
    Execution,
    newest_per_job,
    pairs_of,
    read_claims,
    read_executions,
)

EXIT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 30.0
SCRIPT_COMMANDS = ("evalsha", "eval")


def local_tcp_ports(pid: int) -> set[int]:
    """The local ports of the TCP sockets process `pid` holds (Linux /proc; a stopped process
    can be read too): how Redis's CLIENT LIST tells one node's connections from another's."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            target = os.readlink(f"{fd_dir}/{name}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class ChaosCluster(Cluster):
    """`Cluster` with per-node overrides. `observe` makes the client the test reads state with
    (default: `redis_url`; a Sentinel group passes one that follows the master)."""

    observe: Callable[[], redis.Redis] | None = None
    node_env: dict[str, dict[str, str]] = field(default_factory=dict)
    node_args: dict[str, list[str]] = field(default_factory=dict)
    incarnations: dict[str, int] = field(default_factory=dict)
    _client: redis.Redis | None = None

    @property
    def keys(self) -> Keys:
        return Keys(self.namespace)

    def client(self) -> redis.Redis:
        """The test's own client of the state Redis (not a node's)."""
        if self._client is None:
            self._client = self.observe() if self.observe is not None else self.state()
        return self._client

    # -- processes ---------------------------------------------------------------------------

    def start_node(
        self,
        node_id: str,
        *,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        log_name: str | None = None,
    ) -> Child:
        """Start (or restart, with the same overrides as before) the node `node_id`."""
        if env is not None:
            self.node_env[node_id] = dict(env)
        if args is not None:
            self.node_args[node_id] = list(args)
        count = self.incarnations.get(node_id, 0) + 1
        self.incarnations[node_id] = count
        # Each incarnation logs to a file of its own, so a restart keeps the killed one's log.
        default_name = f"node-{node_id}" if count == 1 else f"node-{node_id}.{count}"
        return super().start_node(
            node_id,
            args=self.node_args.get(node_id, []),
            env=self.node_env.get(node_id),
            log_name=log_name or default_name,
        )

    def kill_node(self, node_id: str) -> None:
        """SIGKILL the node and reap it (bounded)."""
        child = self.nodes[node_id]
        child.signal(signal.SIGKILL)
        child.wait_exit(EXIT_TIMEOUT_S)

    def kill_leader(self, rng: random.Random, *, restart: bool = True) -> tuple[LeaseHolder, float]:
        """SIGKILL the leader at a random point of its second, wait for a successor's first
        claim, and restart the killed node under its id; (the killed leader, the gap in
        seconds from the kill to the successor's first claim)."""
        self.wait_holder()
        # Deliberate fault timing, not synchronisation: hit the leader anywhere in its loop.
        time.sleep(rng.uniform(0.0, 1.0))
        leader = self.wait_holder()
        killed_at = time.time()
        self.kill_node(leader.node_id)
        successor = self.wait_holder(after=leader)
        first = self.wait_claim_by(successor.token)
        if restart:
            self.restart_node(leader.node_id)
        return leader, first.at_ms / 1000 - killed_at

    def restart_node(self, node_id: str) -> Child:
        """Start `node_id` again, the same way, and wait until it heartbeats."""
        child = self.start_node(node_id)
        self.wait_heartbeat(node_id, child)
        return child

    # -- what Redis says ---------------------------------------------------------------------

    def holder(self) -> LeaseHolder | None:
        """The lease holder as Redis shows it now; None if nobody, or Redis did not answer."""
        try:
            return read_holder(self.client(), self.keys)
        except StoreUnavailable:
            return None

    def connections_of(self, node_id: str) -> list[dict[str, Any]]:
        """CLIENT LIST entries of the current process of `node_id` (its Redis connections)."""
        ports = local_tcp_ports(self.nodes[node_id].pid)
        return [
            entry
            for entry in self.client().client_list()
            if int(str(entry.get("addr", ":0")).rsplit(":", 1)[1]) in ports
        ]

    def parked_scripts(self, node_id: str) -> int:
        """How many scripts (EVALSHA/EVAL) of `node_id` Redis holds back under `writes_paused`."""
        return sum(
            1
            for entry in self.connections_of(node_id)
            if "b" in str(entry.get("flags", "")) and entry.get("cmd") in SCRIPT_COMMANDS
        )

    @contextlib.contextmanager
    def writes_paused(self, timeout_ms: int) -> Iterator[None]:
        """CLIENT PAUSE WRITE for the block (at most `timeout_ms`: Redis lifts it by itself):
        every client's scripts and writes wait in Redis, reads are answered. Lifted on exit."""
        client = self.client()
        client.client_pause(timeout_ms, all=False)
        try:
            yield
        finally:
            client.client_unpause()

    def node_records(self) -> dict[str, dict[str, Any]]:
        try:
            raw: dict[bytes, bytes] = self.client().hgetall(self.keys.nodes)  # type: ignore[assignment]
        except redis.RedisError:
            return {}
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def wait_heartbeat(
        self,
        node_id: str,
        child: Child,
        timeout_s: float = READY_TIMEOUT_S,
        after_s: float = 0.0,
    ) -> None:
        """Wait until this process of `node_id` has written its heartbeat record (one written
        after the epoch second `after_s`)."""

        def beating() -> bool:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited early:\n{child.tail()}")
            record = self.node_records().get(node_id, {})
            return record.get("pid") == child.pid and float(record.get("seen_at", 0)) > after_s

        self.wait_until(
            beating, timeout_s=timeout_s, what=f"a heartbeat of {child.name}", interval_s=0.05
        )

    def wait_holder(
        self,
        *,
        timeout_s: float = READY_TIMEOUT_S,
        after: LeaseHolder | None = None,
        among: Iterable[str] | None = None,
    ) -> LeaseHolder:
        """Wait for a lease holder (a new lease, not `after`'s: another token or another
        process); that holder."""
        allowed = set(among) if among is not None else None

        def found() -> LeaseHolder | None:
            holder = self.holder()
            if holder is None:
                return None
            if after is not None and (holder.token, holder.nonce) == (after.token, after.nonce):
                return None
            if allowed is not None and holder.node_id not in allowed:
                return None
            return holder

        return self.wait_until(
            found,
            timeout_s=timeout_s,
            what="a lease holder" + (f" after token {after.token}" if after else ""),
            interval_s=0.02,
        )

    def bring_up_all(self, *node_ids: str, worker: Child | None = None) -> LeaseHolder:
        """Start the nodes; wait until each heartbeats (and the worker is ready); the leader."""
        started = [(node_id, self.start_node(node_id)) for node_id in node_ids]
        for node_id, child in started:
            self.wait_heartbeat(node_id, child)
        if worker is not None:
            self.wait_worker_ready(worker)
        return self.wait_holder()

    # -- what was claimed, enqueued and executed ---------------------------------------------

    def claims(self) -> list[Claim]:
        return read_claims(self.client(), self.keys)

    def executions(self) -> list[Execution]:
        return read_executions(self.client(), self.keys)

    def wait_claim_by(self, token: int, timeout_s: float = 15.0) -> Claim:
        """The first claim made under `token`, once there is one."""
        return self._wait_first_claim(
            lambda c: c.token == token, f"a claim under token {token}", timeout_s
        )

    def wait_first_claim_after(self, epoch_s: float, timeout_s: float = 30.0) -> Claim:
        """The first claim made (Redis time) after `epoch_s`, once there is one."""
        return self._wait_first_claim(
            lambda c: c.at_ms > epoch_s * 1000, f"a claim after {epoch_s:.3f}", timeout_s
        )

    def _wait_first_claim(
        self, matches: Callable[[Claim], bool], what: str, timeout_s: float
    ) -> Claim:
        def first() -> Claim | None:
            try:
                matching = [c for c in self.claims() if matches(c)]
            except redis.RedisError:
                return None
            return min(matching, key=lambda c: c.at_ms) if matching else None

        return self.wait_until(first, timeout_s=timeout_s, what=what, interval_s=0.02)

    def _wait_reached(
        self,
        read: Callable[[], Iterable[Any]],
        jobs: Iterable[str],
        second: int,
        what: str,
        timeout_s: float,
    ) -> None:
        jobs = tuple(jobs)

        def reached() -> bool:
            try:
                newest = newest_per_job(pairs_of(read()), jobs)
            except redis.RedisError:
                return False
            return newest is not None and newest >= second

        self.wait_until(
            reached,
            timeout_s=timeout_s,
            what=f"{what} of {', '.join(jobs)} up to {slot_text(second)}",
            interval_s=0.1,
        )

    def wait_claimed(self, jobs: Iterable[str], second: int, timeout_s: float = 30.0) -> None:
        """Every one of `jobs` has a claim of a slot at or after `second`."""
        self._wait_reached(self.claims, jobs, second, "claims", timeout_s)

    def wait_enqueued(
        self, queue: str, jobs: Iterable[str], second: int, timeout_s: float = 30.0
    ) -> None:
        """Every one of `jobs` has a message on the Redis list `queue` at or after `second`."""
        self._wait_reached(
            lambda: fired_messages(self.client(), queue),
            jobs,
            second,
            f"messages on {queue}",
            timeout_s,
        )

    def wait_executed(self, jobs: Iterable[str], second: int, timeout_s: float = 60.0) -> None:
        """The worker hook has let run a slot at or after `second` of each of `jobs`."""
        self._wait_reached(self.executions, jobs, second, "executions", timeout_s)

    def wait_for_parked(
        self, reader: AmqpQueueReader, jobs: Iterable[str], second: int, timeout_s: float = 30.0
    ) -> None:
        """Every one of `jobs` has a message on the RabbitMQ queue `reader` reads at or after
        `second`."""
        self._wait_reached(reader.poll, jobs, second, f"messages on {reader.name}", timeout_s)
