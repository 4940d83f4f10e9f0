"""Drive real scheduler nodes and Celery workers as child processes, and read what they enqueued.

Every wait here polls a condition against a deadline; nothing sleeps to "let things happen".
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import redis
from celery import Celery
from celery.result import AsyncResult

from scheduler.store.outcomes import read_outcomes

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# --- waiting ------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something other than None/False; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}{extra}")
        time.sleep(interval_s)  # poll interval; the condition above is the synchronisation


# --- config -------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A TOML literal for the few value shapes test configs use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of printable text is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(f"no TOML form for {value!r}")


def write_config(
    path: Path,
    *,
    redis_url: str,
    jobs: Mapping[str, Mapping[str, object]],
    namespace: str = "it",
    lease_ttl: str = "1s",
    extra_settings: Mapping[str, object] | None = None,
) -> Path:
    """Write a scheduler config with the given jobs; the broker is the state Redis."""
    settings: dict[str, object] = {
        "redis_url": redis_url,
        "broker_url": redis_url,
        "namespace": namespace,
        "timezone": "UTC",
        "lease_ttl": lease_ttl,
        **(extra_settings or {}),
    }
    lines = ["[scheduler]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for name, table in jobs.items():
        lines += ["", f"[jobs.{json.dumps(name)}]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PARKED = "parked"  # a queue no worker consumes, so its Redis list keeps every message


def every_second(
    task: str = "jobs.examples.ping", *, queue: str = PARKED, **extra: object
) -> dict[str, object]:
    """A job table that fires `task` every second onto `queue`."""
    return {"task": task, "every": "1s", "queue": queue, **extra}


def catching_up(
    *names: str, queue: str = PARKED, misfire_grace: str = "1m"
) -> dict[str, dict[str, object]]:
    """Jobs firing every second onto `queue`; a new leader fires what fell in a gap (up to
    `misfire_grace` old)."""
    return {
        name: every_second(queue=queue, catchup="all", misfire_grace=misfire_grace)
        for name in names
    }


# --- child processes ----------------------------------------------------------------------


def child_env(config_path: Path) -> dict[str, str]:
    """The environment of a child: this checkout importable, our config, no stray overrides."""
    # A developer's SCHEDULER_REDIS_URL must never point a test node at a shared Redis.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env["SCHEDULER_CONFIG"] = str(config_path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # so a log tail shows the last thing a child did
    return env


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait_exit(self, timeout_s: float) -> int:
        """Wait (bounded) for the process to end; its exit code."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name} still running {timeout_s}s later:\n{self.tail()}"
            ) from None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class Children:
    """Every process a test started; `kill_all` runs at teardown whatever happened."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=REPO_ROOT,
                start_new_session=True,  # its own process group, so teardown reaches any child
            )
        child = Child(name, process, log_path)
        self.started.append(child)
        return child

    def kill_all(self) -> None:
        for child in self.started:
            if child.alive():
                # SIGKILL reaches stopped (SIGSTOPped) processes too; the group takes any child.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
        for child in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=10)

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for child in self.started:
            state = "running" if child.alive() else f"exit code {child.process.returncode}"
            parts.append(f"===== {child.name} (pid {child.pid}, {state}) {child.log_path}")
            parts.append(child.tail(lines) or "<empty log>")
        return "\n".join(parts)


def run_cli(
    args: Sequence[str], env: Mapping[str, str], timeout_s: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m scheduler ARGS` to completion: text stdout/stderr, any exit code."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO_ROOT,
        timeout=timeout_s,
        check=False,
    )


# --- scheduler and worker -----------------------------------------------------------------


@dataclass(frozen=True)
class Leader:
    """The lease holder as `scheduler status` reported it."""

    node_id: str
    token: int


@dataclass
class Cluster:
    """Scheduler nodes and Celery workers sharing one config file and one state Redis."""

    children: Children
    config_path: Path
    redis_url: str  # the state Redis; the broker too unless `extra_settings` names another
    nodes: dict[str, Child] = field(default_factory=dict)
    namespace: str = "it"  # as `configure` last wrote it

    @property
    def env(self) -> dict[str, str]:
        return child_env(self.config_path)

    def state(self) -> redis.Redis:
        """A client of the state Redis, with short socket timeouts."""
        return redis.Redis.from_url(self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def configure(
        self,
        *,
        namespace: str,
        jobs: Mapping[str, Mapping[str, object]],
        lease_ttl: str = "1s",
        extra_settings: Mapping[str, object] | None = None,
    ) -> Path:
        """(Re)write the config file that every node, worker and CLI run of ours reads."""
        self.namespace = namespace
        return write_config(
            self.config_path,
            redis_url=self.redis_url,
            jobs=jobs,
            namespace=namespace,
            lease_ttl=lease_ttl,
            extra_settings=extra_settings,
        )

    def bring_up(self, *node_ids: str, worker_queue: str | None = None) -> Leader:
        """Start the nodes (and a worker on `worker_queue`); wait until all are ready; the leader."""
        worker = self.start_worker(worker_queue) if worker_queue is not None else None
        for node_id in node_ids:
            self.start_node(node_id)
        if worker is not None:
            self.wait_worker_ready(worker)
        return self.wait_for_leader()

    def start_node(
        self,
        node_id: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_name: str | None = None,
    ) -> Child:
        """Start `scheduler run` as `node_id`, with extra `args` and `env` over our own; its log
        is `<log_name>.log` (default: node-<node_id>)."""
        command = [
            sys.executable, "-m", "scheduler", "run",
            "--config", str(self.config_path), "--node-id", node_id, *args,
        ]  # fmt: skip
        child = self.children.start(
            log_name or f"node-{node_id}", command, {**self.env, **(env or {})}
        )
        self.nodes[node_id] = child
        return child

    def start_worker(
        self, queue: str, name: str = "worker", *, env: Mapping[str, str] | None = None
    ) -> Child:
        """Start a Celery worker on `queue`, with `env` over our own."""
        command = [
            sys.executable, "-m", "celery", "-A", "jobs", "worker",
            "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
            # A node name of its own: workers of other test runs share RabbitMQ's pidbox queues.
            "-Q", queue, "-n", f"{name}.{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
        ]  # fmt: skip
        return self.children.start(name, command, {**self.env, **(env or {})})

    def wait_until(
        self,
        condition: Callable[[], T | None],
        *,
        timeout_s: float,
        what: str,
        interval_s: float = 0.1,
    ) -> T:
        """`wait_until`, with every child's log tail in the error if it times out."""
        return wait_until(
            condition,
            timeout_s=timeout_s,
            what=what,
            interval_s=interval_s,
            on_timeout=self.children.log_tails,
        )

    def wait_worker_ready(self, worker: Child, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            if not worker.alive():
                raise RuntimeError(f"worker exited early:\n{worker.tail()}")
            return " ready." in worker.log_text()

        wait_until(
            ready,
            timeout_s=timeout_s,
            what="the Celery worker to be ready",
            interval_s=0.2,
            on_timeout=worker.tail,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `scheduler ARGS --config <ours>` to completion, whatever its exit code."""
        return run_cli([*args, "--config", str(self.config_path)], self.env)

    def cli_json(self, *args: str) -> Any:
        """Run a `--json` command that must succeed; its parsed output."""
        done = self.cli(*args, "--json")
        if done.returncode != 0:
            raise RuntimeError(
                f"`scheduler {' '.join(args)} --json` exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return json.loads(done.stdout)

    def status(self) -> dict[str, Any]:
        """`scheduler status --json`; it exits 3 (and still answers) while no node leads."""
        done = self.cli("status", "--json")
        if done.returncode not in (0, 3):
            raise RuntimeError(
                f"`scheduler status --json` exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def config_hash(self) -> str:
        """The hash `scheduler validate` reports for the config file as it is now."""
        done = self.cli("validate")
        found = re.search(r"config hash (\S+)$", done.stdout.strip())
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"`scheduler validate` exited {done.returncode}:\n{done.stderr}")
        return found.group(1)

    def wait_for_leader(self, *, timeout_s: float = 30.0, other_than: Iterable[str] = ()) -> Leader:
        """Poll `scheduler status` until some node (not in `other_than`) holds the lease."""
        excluded = set(other_than)

        def leader() -> Leader | None:
            for node_id, child in self.nodes.items():
                if not child.alive() and node_id not in excluded:
                    raise RuntimeError(f"node {node_id} exited early:\n{child.tail()}")
            current = self.status()
            if current.get("leader") is None or current["leader"] in excluded:
                return None
            return Leader(current["leader"], int(current["fencing_token"]))

        return self.wait_until(leader, timeout_s=timeout_s, what="a leader", interval_s=0.2)

    def signal_leader(self, leader: Leader, signum: int) -> Child:
        """Send `signum` to the leader's process; that process."""
        child = self.nodes[leader.node_id]
        child.signal(signum)
        return child

    def wait_for_successor(self, leader: Leader, *, timeout_s: float = 30.0) -> Leader:
        """Poll `scheduler status` until a node other than `leader` holds the lease."""
        return self.wait_for_leader(timeout_s=timeout_s, other_than={leader.node_id})

    def wait_for_records(self, *node_ids: str, timeout_s: float = 15.0) -> dict[str, Any]:
        """Poll `scheduler status` until exactly these nodes have records; that status."""

        def recorded() -> dict[str, Any] | None:
            current = self.status()
            return current if {n["node_id"] for n in current["nodes"]} == set(node_ids) else None

        return self.wait_until(
            recorded,
            timeout_s=timeout_s,
            what=f"records of {', '.join(node_ids)} in `status`",
            interval_s=0.2,
        )


def celery_result(
    task_id: str, *, broker_url: str, backend_url: str, timeout_s: float = 30.0
) -> Any:
    """Wait (bounded) for the result of `task_id` the way any Celery client would."""
    client_app = Celery("it-client", broker=broker_url, backend=backend_url)
    try:
        return AsyncResult(task_id, app=client_app).get(timeout=timeout_s)
    finally:
        client_app.close()


def wait_for_outcome(
    state: redis.Redis, namespace: str, job: str, outcome: str, *, timeout_s: float = 15.0
) -> dict[str, Any]:
    """Wait until the worker hooks have recorded `outcome` as `job`'s last; that record."""

    def recorded() -> dict[str, Any] | None:
        record = read_outcomes(state, namespace).get(job)
        return record if record and record.get("outcome") == outcome else None

    return wait_until(recorded, timeout_s=timeout_s, what=f"{job}'s {outcome!r} recorded")


# --- what the broker holds ----------------------------------------------------------------


def task_id_for(namespace: str, job: str, slot: str) -> str:
    """The task id docs/guarantees.md promises for one fire."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scheduler://{namespace}/{job}/{slot}"))


SLOT_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def slot_text(epoch_s: int) -> str:
    """A slot as the ``scheduler_slot`` header writes it: ``2026-11-25T21:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def slot_soon() -> str:
    """A slot safely after leadership began: a new job never fires slots from before that."""
    return slot_text(int(time.time()) + 2)


@dataclass(frozen=True)
class Fired:
    """One message the scheduler put on a Redis broker list."""

    job: str
    slot: str
    token: int
    task_id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]

    @property
    def slot_s(self) -> int:
        """The slot as whole Unix seconds."""
        return math.floor(datetime.fromisoformat(self.slot).timestamp())


def fired_from(headers: Mapping[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Fired:
    """One fire, from a Celery message's headers and decoded body (any broker)."""
    return Fired(
        job=headers["scheduler_job"],
        slot=headers["scheduler_slot"],
        token=int(headers["scheduler_token"]),
        task_id=headers["id"],
        task=headers["task"],
        args=args,
        kwargs=kwargs,
    )


def parse_message(raw: bytes) -> Fired:
    message = json.loads(raw)
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    return fired_from(message["headers"], args, kwargs)


def fired_messages(client: redis.Redis, queue: str) -> list[Fired]:
    """Every message waiting on `queue` (kombu's Redis transport: a list named after it)."""
    raw: list[bytes] = client.lrange(queue, 0, -1)  # type: ignore[assignment]
    return [parse_message(item) for item in raw]


def newest_slot_s(messages: Iterable[Fired], jobs: Iterable[str]) -> int | None:
    """The newest slot that every one of `jobs` has reached, or None if one has none yet."""
    newest: dict[str, int] = {}
    for message in messages:
        newest[message.job] = max(newest.get(message.job, 0), message.slot_s)
    reached = [newest.get(job) for job in jobs]
    if any(slot is None for slot in reached):
        return None
    return min(slot for slot in reached if slot is not None)


def of_job(job: str, messages: Iterable[Fired]) -> list[Fired]:
    """The messages of one job."""
    return [m for m in messages if m.job == job]


def under_other_tokens(token: int, messages: Iterable[Fired]) -> list[Fired]:
    """The messages some leader other than the one holding `token` sent."""
    return [m for m in messages if m.token != token]


@dataclass(frozen=True)
class ParkedQueue:
    """A queue on the Redis broker that no worker consumes: every message stays readable."""

    client: redis.Redis
    name: str = PARKED
    on_timeout: Callable[[], str] | None = None  # what a timed-out wait adds to its error

    def messages(self) -> list[Fired]:
        return fired_messages(self.client, self.name)

    def wait_for(
        self,
        found: Callable[[list[Fired]], T | None],
        *,
        what: str,
        timeout_s: float = 30.0,
        interval_s: float = 0.1,
    ) -> T:
        """Poll the queue until `found(messages)` is truthy (not None, False or empty); that value."""
        return wait_until(
            lambda: found(self.messages()) or None,
            timeout_s=timeout_s,
            what=what,
            interval_s=interval_s,
            on_timeout=self.on_timeout,
        )

    def wait_for_slots(
        self, jobs: Iterable[str], second: int, *, timeout_s: float = 30.0
    ) -> list[Fired]:
        """Wait until every one of `jobs` has a slot at or after `second`; the messages."""
        jobs = tuple(jobs)

        def reached(messages: list[Fired]) -> list[Fired] | None:
            newest = newest_slot_s(messages, jobs)
            return messages if newest is not None and newest >= second else None

        return self.wait_for(
            reached,
            what=f"slots of {', '.join(jobs)} up to {slot_text(second)} on {self.name}",
            timeout_s=timeout_s,
        )


def check_every_slot_once(
    messages: Iterable[Fired], jobs: Iterable[str], first_s: int, last_s: int
) -> None:
    """Assert each job has every 1-second slot in [first_s, last_s] exactly once, nothing else."""
    jobs = sorted(jobs)
    counts = Counter((m.job, m.slot_s) for m in messages if first_s <= m.slot_s <= last_s)
    expected = {(job, second) for job in jobs for second in range(first_s, last_s + 1)}
    repeated = {f"{job}@{slot_text(s)}": n for (job, s), n in sorted(counts.items()) if n > 1}
    missing = sorted(f"{job}@{slot_text(s)}" for job, s in expected - counts.keys())
    unexpected = sorted(f"{job}@{slot_text(s)}" for job, s in counts.keys() - expected)
    assert not repeated, f"slots enqueued more than once: {repeated}"
    assert not missing, f"slots never enqueued: {missing}"
    assert not unexpected, f"slots nobody scheduled: {unexpected}"
    assert sum(counts.values()) == len(expected) == len(jobs) * (last_s - first_s + 1)


def check_no_repeats(messages: Iterable[Fired], *, namespace: str | None = None) -> None:
    """Inside any window or not, no (job, slot) went out twice; with `namespace`, every message
    carries the task id docs/guarantees.md promises."""
    messages = list(messages)
    assert len({(m.job, m.slot) for m in messages}) == len(messages)
    if namespace is not None:
        assert all(m.task_id == task_id_for(namespace, m.job, m.slot) for m in messages)
