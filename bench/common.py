"""What every measurement shares: a private redis-server, child processes and what they cost,
the collector that watches a broker list, and a few numbers helpers.

Nothing here knows which scheduler it measures: the drivers (``ours.py``, ``peers/``) start
processes, and the collector reads only what landed in Redis.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
T = TypeVar("T")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- waiting --------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.05
) -> T:
    """Poll `condition` until it returns something truthy; that value. Always bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def sleep_until_wall(instant_s: float) -> None:
    """Sleep until the wall clock reads `instant_s` (returns at once if it has passed)."""
    while (left := instant_s - time.time()) > 0:
        time.sleep(min(left, 0.5))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- child processes ------------------------------------------------------------------------


@dataclass
class Proc:
    """One child process, its log file, and what it costs according to /proc."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # wall clock, just before the spawn

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far (this process and its reaped children)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[11:15] are utime, stime, cutime, cstime (stat fields 14-17)
        ticks = sum(int(value) for value in fields[11:15])
        return ticks / CLOCK_TICKS

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (the peak resident set so far), in KiB."""
        result = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                result[key] = int(value.split()[0])
        return result

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL to its process group if it does not end in time."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


@dataclass
class Procs:
    """Every process a measurement started; `stop_all` runs whatever happened."""

    log_dir: Path
    started: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        started_at = time.time()
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env if env is not None else os.environ),
                cwd=cwd or REPO_ROOT,
                start_new_session=True,  # its own process group: kill reaches its children
            )
        proc = Proc(name, popen, log_path, started_at)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop(timeout_s=5)
        self.started.clear()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child: no SCHEDULER_* or Celery settings leaking in from ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SCHEDULER_", "CELERY_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- the private Redis ----------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free port, without persistence; never the shared one."""

    def __init__(self, procs: Procs, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found: install Debian's redis-server package")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = procs.start(
            f"redis-{self.port}",
            [
                binary,
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(workdir),
            ],
        )  # fmt: skip
        self.client = self.connect()
        wait_until(self._up, timeout_s=10, what="redis-server")

    def connect(self, timeout_s: float = 5.0) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def _up(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def flush(self) -> None:
        self.client.flushall()
        self.client.config_resetstat()

    def commands_processed(self) -> int:
        return int(self.client.info("stats")["total_commands_processed"])

    def commandstats(self) -> dict[str, int]:
        """Calls per command since the last reset."""
        return {name: calls for name, (calls, _) in self.command_usec().items()}

    def command_usec(self) -> dict[str, tuple[int, int]]:
        """(calls, microseconds spent in Redis) per command since the last reset."""
        stats: dict[str, Any] = self.client.info("commandstats")
        return {
            key.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
            for key, value in stats.items()
        }

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])


# --- the collector --------------------------------------------------------------------------


@dataclass
class Arrival:
    """The k-th message pushed onto a list, its raw payload and when it was first seen there."""

    index: int  # 0 = the first message pushed
    seen_s: float  # wall clock, midpoint of the LLEN that first counted it
    raw: bytes


class Collector:
    """Polls LLEN of a broker list on its own connection and times each message's arrival.

    kombu's Redis transport LPUSHes every message, and nothing consumes the list while we
    watch, so the k-th message pushed is the k-th counted: the first poll whose LLEN reached k
    dates it. The error is one poll interval plus one round trip (about 1.1 ms + 0.1 ms here);
    no MONITOR, which would slow Redis itself. The payloads are read once, at the end.
    """

    def __init__(self, server: RedisServer, key: str, interval_s: float = 0.001) -> None:
        self.client = server.connect()
        self.key = key
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []  # (seen_s, length), only when it changed
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"collect-{self.key}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def length(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            before = time.time()
            try:
                length = int(self.client.llen(self.key))
            except redis.RedisError:
                time.sleep(0.01)
                continue
            after = time.time()
            self.polls += 1
            if length != last:
                self.samples.append(((before + after) / 2, length))
                last = length
            time.sleep(self.interval_s)

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Wait (bounded) until `count` messages have arrived; whether they did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.length() >= count:
                return True
            time.sleep(0.01)
        return self.length() >= count

    def arrivals(self) -> list[Arrival]:
        """Every message pushed so far, oldest first, with the time it was first counted."""
        raw: list[bytes] = self.client.lrange(self.key, 0, -1)  # type: ignore[assignment]
        raw.reverse()  # LPUSH: the newest is at the head
        result = []
        cursor = 0
        for index, payload in enumerate(raw):
            while cursor < len(self.samples) and self.samples[cursor][1] <= index:
                cursor += 1
            seen = self.samples[cursor][0] if cursor < len(self.samples) else math.nan
            result.append(Arrival(index, seen, payload))
        return result


def message_headers(raw: bytes) -> dict[str, Any]:
    """The Celery protocol 2 headers of a kombu Redis message."""
    message = json.loads(raw)
    headers: dict[str, Any] = message.get("headers", {})
    return headers


def slot_seconds(text: str) -> int:
    """``2026-11-25T21:00:00Z`` as Unix seconds."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


# --- numbers --------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


OWN_COMMANDS = ("info", "config|resetstat", "flushall", "llen", "lrange", "ping")


def busiest_commands(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], top: int = 4
) -> dict[str, dict[str, float]]:
    """The commands Redis spent most time in between two `command_usec` readings, with their
    calls; the collector's own (LLEN, LRANGE, INFO) left out. Commands run inside a script
    count both on their own and in the script's time."""
    spent = {
        name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
        for name, (calls, usec) in after.items()
        if name not in OWN_COMMANDS
    }
    busiest = sorted(spent.items(), key=lambda item: -item[1][1])[:top]
    return {name: {"calls": c, "s": round(u / 1e6, 4)} for name, (c, u) in busiest if c}


def spread(values: Iterable[float]) -> dict[str, float | int | None]:
    """p50/p99/max (seconds) and the count; None for an empty set."""
    items = [v for v in values if not math.isnan(v)]
    if not items:
        return {"count": 0, "p50_s": None, "p99_s": None, "max_s": None}
    return {
        "count": len(items),
        "p50_s": round(percentile(items, 0.50), 4),
        "p99_s": round(percentile(items, 0.99), 4),
        "max_s": round(max(items), 4),
    }


def next_boundary(after_s: float, step_s: int) -> int:
    """The first multiple of `step_s` (Unix seconds) at or after `after_s`."""
    return int(math.ceil(after_s / step_s) * step_s)


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
