"""Redis servers a chaos test owns: one it can crash and restart on the same port (with or
without its data), and a Sentinel group (master, replica, three sentinels) it can fail over.

All on loopback ports picked at start; never the machine's shared Redis on 6379. Every wait
polls a condition against a deadline.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.sentinel import Sentinel as RedisSentinel

from tests.conftest import free_port, missing_server
from tests.integration.harness import wait_until

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
SENTINEL_MASTER = "mymaster"


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_server("redis-server")
    return binary


def _client(port: int, timeout_s: float = 0.5) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


def _answers_ping(port: int) -> bool:
    client = _client(port)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class RedisProcess:
    """One redis-server on a fixed port and directory, which the test can kill and restart.

    ``persistent=True`` keeps every acknowledged write: an append-only file synced before each
    reply (``appendfsync always``), so even a SIGKILL loses nothing a client was told happened.
    ``persistent=False`` keeps nothing, and `start` wipes the directory so a restart comes
    back empty.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    persistent: bool = False
    replica_of: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def client(self, timeout_s: float = 2.0) -> redis.Redis:
        return _client(self.port, timeout_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, persistent: bool | None = None) -> None:
        if self.alive():
            raise RuntimeError(f"redis-server on {self.port} is already running")
        if persistent is not None:
            self.persistent = persistent
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.persistent:
            for stale in ("appendonlydir", "dump.rdb"):
                path = self.data_dir / stale
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        command = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
        ]  # fmt: skip
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.starts += 1
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on {self.port} exited with {process.returncode}:\n"
                    + self.log_tail()
                )
            return _answers_ping(self.port)

        wait_until(
            up, timeout_s=START_TIMEOUT_S, what=f"redis-server on {self.port}", interval_s=0.02
        )
        if self.persistent:
            # Serve nothing to the test before the append-only file is fully loaded.
            wait_until(
                self._loading_done,
                timeout_s=START_TIMEOUT_S,
                what=f"redis-server on {self.port} to load its data",
                interval_s=0.02,
            )

    def _loading_done(self) -> bool:
        client = self.client()
        try:
            info = client.info("persistence")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return not info.get("loading") and not info.get("aof_rewrite_in_progress")

    def kill(self) -> None:
        """SIGKILL: a crash; nothing is flushed that was not already."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        self._end(signal.SIGTERM)

    def _end(self, signum: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Sentinel:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "sentinel.log"

    def client(self) -> redis.Redis:
        return _client(self.port, 1.0)


@dataclass
class SentinelGroup:
    """A master, one replica and three sentinels watching them (quorum 2), all on loopback.

    `master` and `replica` are the roles at the start; after a failover `current_master()`
    says which is which."""

    root: Path
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    master: RedisProcess = field(init=False)
    replica: RedisProcess = field(init=False)
    sentinels: list[Sentinel] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.master = RedisProcess(self.root / "master")
        self.replica = RedisProcess(self.root / "replica", replica_of=self.master.port)

    @property
    def sentinel_url(self) -> str:
        """The scheduler's URL for this group: every sentinel, the master's name, database 0."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_MASTER}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        for index in range(3):
            self.sentinels.append(self._start_sentinel(index))
        self.wait_until_watched()

    def servers(self) -> tuple[RedisProcess, RedisProcess]:
        return self.master, self.replica

    def other(self, server: RedisProcess) -> RedisProcess:
        return self.replica if server is self.master else self.master

    def master_client(self) -> redis.Redis:
        """A client that finds the master through the sentinels (again after a failover)."""
        finder = RedisSentinel(
            [("127.0.0.1", s.port) for s in self.sentinels],
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        client: redis.Redis = finder.master_for(
            SENTINEL_MASTER, socket_timeout=2.0, socket_connect_timeout=1.0
        )
        return client

    def rejoin(self, server: RedisProcess) -> None:
        """Start a crashed server again, as a replica of the current master (without data)."""
        server.replica_of = self.current_master().port
        server.start(persistent=False)
        self.wait_until_watched()

    def _start_sentinel(self, index: int) -> Sentinel:
        directory = self.root / f"sentinel{index}"
        directory.mkdir(parents=True, exist_ok=True)
        sentinel = Sentinel(free_port(), directory)
        conf = directory / "sentinel.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {sentinel.port}",
                    "bind 127.0.0.1",
                    f"dir {directory}",
                    f"logfile {sentinel.log_path}",
                    f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.master.port} 2",
                    f"sentinel down-after-milliseconds {SENTINEL_MASTER} {self.down_after_ms}",
                    f"sentinel failover-timeout {SENTINEL_MASTER} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {SENTINEL_MASTER} 1",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        sentinel.process = subprocess.Popen(
            [redis_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return sentinel

    def _sentinel_view(self, sentinel: Sentinel) -> dict[str, object] | None:
        client = sentinel.client()
        try:
            master = client.sentinel_master(SENTINEL_MASTER)
            replicas = client.sentinel_slaves(SENTINEL_MASTER)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return {"master": master, "replicas": replicas}

    def wait_until_watched(self, timeout_s: float = 30.0) -> None:
        """Every sentinel knows the master, the replica (in sync) and the two other sentinels."""

        def watched() -> bool:
            for sentinel in self.sentinels:
                if sentinel.process is not None and sentinel.process.poll() is not None:
                    raise RuntimeError(f"sentinel on {sentinel.port} exited")
                view = self._sentinel_view(sentinel)
                if view is None:
                    return False
                master = view["master"]
                replicas = view["replicas"]
                assert isinstance(master, dict)
                assert isinstance(replicas, list)
                if int(master.get("num-other-sentinels", 0)) != 2:
                    return False
                if int(master.get("port", 0)) != self.current_master().port:
                    return False
                healthy = [
                    r
                    for r in replicas
                    if not r.get("is_sdown") and r.get("master-link-status") == "ok"
                ]
                if len(healthy) != 1:
                    return False
            return True

        wait_until(
            watched,
            timeout_s=timeout_s,
            what="three sentinels that know the master, the replica and each other",
            interval_s=0.2,
            on_timeout=self.log_tails,
        )

    def current_master(self) -> RedisProcess:
        """The server the sentinels' majority names as master now (the test's own view)."""
        ports = []
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                address = client.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if address:
                ports.append(int(address[1]))
        for server in self.servers():
            if ports.count(server.port) >= 2:
                return server
        raise RuntimeError(f"the sentinels disagree on the master: ports {ports}")

    def wait_replica_synced(self, timeout_s: float = 10.0) -> None:
        """The replica has every write the master acknowledged so far."""
        current = self.current_master()

        def synced() -> bool:
            master, replica = current.client(), self.other(current).client()
            try:
                offset = int(master.info("replication")["master_repl_offset"])
                info = replica.info("replication")
            except redis.RedisError:
                return False
            finally:
                master.close()
                replica.close()
            return (
                info.get("master_link_status") == "up"
                and int(info.get("slave_repl_offset", -1)) >= offset
            )

        wait_until(synced, timeout_s=timeout_s, what="the replica to catch up", interval_s=0.05)

    def wait_promoted(self, server: RedisProcess, timeout_s: float = 30.0) -> None:
        """The sentinels' majority names `server` as master and it answers as one."""

        def promoted() -> bool:
            try:
                if self.current_master() is not server:
                    return False
            except RuntimeError:
                return False
            client = server.client()
            try:
                return bool(client.info("replication").get("role") == "master")
            except redis.RedisError:
                return False
            finally:
                client.close()

        wait_until(
            promoted,
            timeout_s=timeout_s,
            what=f"the sentinels to promote the server on {server.port}",
            interval_s=0.05,
            on_timeout=self.log_tails,
        )

    def log_tails(self) -> str:
        parts = []
        for server in (self.master, self.replica):
            parts += [f"===== redis {server.port}", server.log_tail()]
        for sentinel in self.sentinels:
            try:
                text = sentinel.log_path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                text = "<no log>"
            parts += [f"===== sentinel {sentinel.port}", "\n".join(text.splitlines()[-15:])]
        return "\n".join(parts)

    def close(self) -> None:
        for sentinel in self.sentinels:
            if sentinel.process is not None and sentinel.process.poll() is None:
                sentinel.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    sentinel.process.wait(timeout=STOP_TIMEOUT_S)
        self.replica.kill()
        self.master.kill()
