"""A small live cluster on this machine, for `make run` and `make demo` (a development tool,
not part of the installed package: run it as ``python tools/localcluster.py``).

Starts a private redis-server on a free port, one Celery worker and three scheduler nodes with
the given config (pointed at that Redis through SCHEDULER_REDIS_URL), shows what happens, and
stops everything it started on Ctrl-C. ``--demo`` is a scripted tour that ends by itself:
jobs fire, the leader is killed, another node takes over, then a planned handover, and every
slot of the tour is counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis

from scheduler.clock import utc
from scheduler.config import load_config
from scheduler.lease import read_holder
from scheduler.store.keys import Keys
from scheduler.store.state import StateStore
from scheduler.views import status_record, table
from scheduler.wire import slot_text
from scheduler.zones import use_pinned_tzdata

WORKER_LINES = ("succeeded in", "raised", "Retry in", "ready.")
NODE_LINES = ("leading with", "no longer leading", "lease", "missed", "ERROR", "stopped")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class Cluster:
    def __init__(self, config_path: Path, nodes: int, workdir: Path) -> None:
        self.config_path = config_path.resolve()
        self.node_count = nodes
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.processes: dict[str, subprocess.Popen[str]] = {}
        # Each node's status page, /metrics, /healthz and /readyz (http_listen, per node).
        self.http_ports: dict[str, int] = {}
        self.echo = True  # log lines of interest are echoed until the operator's view starts
        self.env = {
            **os.environ,
            "SCHEDULER_CONFIG": str(self.config_path),
            "SCHEDULER_REDIS_URL": self.url,
            "SCHEDULER_BROKER_URL": self.url,
            "PYTHONUNBUFFERED": "1",
        }
        self.config = load_config(self.config_path, self.env)
        self.client = redis.Redis.from_url(self.url, socket_timeout=2)
        self.store = StateStore(self.client, Keys(self.config.scheduler.namespace))

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found: install Debian's redis-server package")
        self._spawn(
            "redis",
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "no",
            ],
            show=(),
        )
        wait_for(self._redis_up, 10, "redis-server")
        print(f"redis-server on port {self.port}")
        self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "jobs",
                "worker",
                "--pool=solo",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            show=WORKER_LINES,
        )
        for index in range(1, self.node_count + 1):
            self.start_node(f"node-{index}")
        wait_for(lambda: self.leader() is not None, 20, "a leader")
        wait_for(lambda: len(self.store.nodes()) >= self.node_count, 20, "every node's heartbeat")

    def start_node(self, node_id: str) -> None:
        port = self.http_ports.setdefault(node_id, free_port())
        self._spawn(
            node_id,
            [sys.executable, "-m", "scheduler", "run", "--node-id", node_id],
            show=NODE_LINES,
            env={"SCHEDULER_HTTP_LISTEN": f"127.0.0.1:{port}"},
        )

    def leader(self) -> str | None:
        holder = read_holder(self.client, self.store.keys)
        return holder.node_id if holder else None

    def print_status(self) -> None:
        now_s = time.time()
        record = status_record(
            read_holder(self.client, self.store.keys), self.store.nodes(), now_s, {}
        )
        print(
            f"\n== status: leader {record['leader']}, token {record['fencing_token']}, "
            f"lease left {record['lease_left_ms']} ms"
        )
        print(
            table(
                record["nodes"],
                ["node_id", "pid", "leader", "clock_offset_ms", "config_hash", "seen_ago_s"],
            )
        )
        print()

    def signal(self, name: str, sig: signal.Signals) -> subprocess.Popen[str]:
        """Send `sig` to a process and stop tracking it; the caller waits for it to end."""
        process = self.processes.pop(name)
        process.send_signal(sig)
        return process

    def stop(self) -> None:
        for name in list(self.processes):
            if name != "redis":
                self.processes[name].send_signal(signal.SIGTERM)
        for name, process in list(self.processes.items()):
            if name == "redis":
                continue
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if "redis" in self.processes:
            self.processes["redis"].kill()
            self.processes["redis"].wait()
        self.processes.clear()

    def quiet(self) -> None:
        """Stop echoing log lines: from now on they only go to the log folder."""
        self.echo = False

    def _redis_up(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def _spawn(
        self,
        name: str,
        command: list[str],
        show: tuple[str, ...],
        env: dict[str, str] | None = None,
    ) -> None:
        process = subprocess.Popen(
            command,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.processes[name] = process
        log = (self.workdir / f"{name}.log").open("a")
        assert process.stdout is not None
        threading.Thread(
            target=self._relay, args=(name, process.stdout, log, show), daemon=True
        ).start()

    def _relay(self, name: str, stream: IO[str], log: IO[str], show: tuple[str, ...]) -> None:
        for line in stream:
            log.write(line)
            log.flush()
            if self.echo and any(marker in line for marker in show):
                print(f"[{name:>7}] {line.rstrip()[-160:]}", flush=True)


def count_slots(cluster: Cluster, since_s: float, until_s: float) -> None:
    """Per `every` job: slots in the window, how many were enqueued, missing, repeated, late."""
    fires: list[tuple[bytes, dict[bytes, bytes]]] = cluster.client.xrange(  # type: ignore[assignment]
        cluster.store.keys.history
    )
    seen: Counter[tuple[str, int]] = Counter()
    lateness_s: dict[str, float] = {}
    for entry_id, fields in fires:
        name, slot = fields[b"job"].decode(), int(fields[b"slot"])
        seen[(name, slot)] += 1
        # A stream entry id starts with the Redis time of the XADD in ms: when it was enqueued.
        sent_s = int(entry_id.split(b"-")[0]) / 1000
        if since_s <= slot <= until_s:
            lateness_s[name] = max(lateness_s.get(name, 0.0), sent_s - slot)
    print(f"\n== slots between {slot_text(int(since_s))} and {slot_text(int(until_s))}")
    for name, job in sorted(cluster.config.jobs.items()):
        if job.kind != "every":
            continue
        expected, cursor = [], job.trigger.next_slot(utc(since_s))
        while cursor is not None and cursor.timestamp() <= until_s:
            expected.append(int(cursor.timestamp()))
            cursor = job.trigger.next_slot(cursor)
        missing = [s for s in expected if seen[(name, s)] == 0]
        repeated = [s for s in expected if seen[(name, s)] > 1]
        print(
            f"{name:>12}: {len(expected)} slots, {len(expected) - len(missing)} enqueued, "
            f"{len(missing)} missing, {len(repeated)} repeated; "
            f"worst lateness {lateness_s.get(name, 0.0):.2f}s"
        )


def handover(cluster: Cluster, sig: signal.Signals, what: str) -> None:
    leader = cluster.leader()
    assert leader is not None
    print(f"== {what}: {sig.name} to the leader {leader}")
    sent_at = time.monotonic()
    process = cluster.signal(leader, sig)
    wait_for(lambda: cluster.leader() not in (None, leader), 15, "a new leader")
    print(f"== {cluster.leader()} leads {time.monotonic() - sent_at:.2f}s after the {sig.name}")
    process.wait(timeout=15)


def demo(cluster: Cluster) -> None:
    started = time.time()
    time.sleep(12)
    cluster.print_status()
    victim = cluster.leader()
    handover(cluster, signal.SIGKILL, "an unplanned failover")
    assert victim is not None
    cluster.start_node(victim)
    time.sleep(12)
    cluster.print_status()
    handover(cluster, signal.SIGTERM, "a planned handover")
    time.sleep(8)
    cluster.print_status()
    count_slots(cluster, started + 2, time.time() - 2)


def operator_view(cluster: Cluster, workdir: Path) -> None:
    """What an operator watches, redrawn every 2 s: `scheduler status` and `scheduler jobs
    list`, run as an operator would run them (each also has `--watch` of its own)."""
    cluster.quiet()
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    pages = "  ".join(
        f"{node} http://127.0.0.1:{port}/" for node, port in sorted(cluster.http_ports.items())
    )
    while True:
        screens = [
            subprocess.run(
                [sys.executable, "-m", "scheduler", *command],
                env=cluster.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            for command in (["status"], ["jobs", "list"])
        ]
        print(
            f"{clear}scheduler: a live cluster of {cluster.node_count} nodes and a worker; "
            f"logs in {workdir}; Ctrl-C stops it\nstatus pages (and /metrics, /healthz, "
            f"/readyz): {pages}\n\n$ scheduler status\n{screens[0].stdout}"
            f"{screens[0].stderr}\n$ scheduler jobs list\n{screens[1].stdout}{screens[1].stderr}",
            flush=True,
        )
        time.sleep(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=Path("config/scheduler.toml"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--demo", action="store_true", help="a scripted tour that ends by itself")
    args = parser.parse_args(argv)
    # The slot count below must match what the nodes enqueued, so it reads the same zone rules.
    use_pinned_tzdata()
    with tempfile.TemporaryDirectory(prefix="scheduler-cluster-") as workdir:
        cluster = Cluster(args.config, args.nodes, Path(workdir))
        print(f"logs in {workdir}")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            cluster.start()
            if args.demo:
                demo(cluster)
            else:
                operator_view(cluster, Path(workdir))
        except KeyboardInterrupt:
            print("\nstopping the cluster")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
