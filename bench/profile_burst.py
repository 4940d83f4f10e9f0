"""Profile our node through one burst with py-spy (from the peers' venv), from outside.

    bench/.venv-peers/bin/python bench/profile_burst.py [--n 10000] [--out DIR]

Starts a private redis-server and one node whose N jobs are all due at one instant, attaches
``py-spy record`` to the node from a second before the instant until the burst is in Redis,
and prints where the samples fell: the busiest functions by their own time and by time
spent under them, and writes them to bench/results/profile.json for docs/performance.md.
The raw collapsed stacks (flamegraph input) are kept in --out.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import ours
from common import (
    BENCH_DIR,
    Collector,
    Procs,
    RedisServer,
    busiest_commands,
    clean_env,
    next_boundary,
    sleep_until_wall,
    wait_until,
)
from jobsets import QUEUE, at_instant, never_due

PY_SPY = BENCH_DIR / ".venv-peers" / "bin" / "py-spy"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument(
        "--startup",
        action="store_true",
        help="profile the start-up instead: from the spawn until the node leads",
    )
    parser.add_argument(
        "--distinct", type=int, default=1_000, help="start-up: distinct cron expressions"
    )
    args = parser.parse_args(argv)
    if args.startup:
        profile_startup(args.n, min(args.n, args.distinct), args.rate, args.out)
        return
    workdir = Path(tempfile.mkdtemp(prefix="scheduler-profile-"))
    out = args.out or workdir
    out.mkdir(parents=True, exist_ok=True)
    procs = Procs(workdir / "logs")
    raw = out / f"burst-{args.n}.collapsed"
    try:
        server = RedisServer(procs, workdir / "redis")
        instant = next_boundary(time.time() + 5 + 3 * args.n / 10_000, 1)
        config = ours.write_config(
            workdir / "profile.toml", server.url, at_instant(args.n, instant, seconds=True)
        )
        node = ours.start_node(procs, config, "a", tag="profile-")
        ours.wait_leading(node, timeout_s=instant - 1 - time.time())
        with Collector(server, QUEUE) as collector:
            sleep_until_wall(instant - 1)
            redis_before = server.command_usec()
            spy = subprocess.Popen(
                [
                    str(PY_SPY), "record", "--pid", str(node.pid), "--rate", str(args.rate),
                    "--format", "raw", "--output", str(raw), "--nonblocking", "--threads",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            done = collector.wait_for(args.n, timeout_s=120)
            spy.send_signal(2)  # SIGINT: py-spy writes what it has and exits
            _, errors = spy.communicate(timeout=30)
            redis_after = server.command_usec()
        last = collector.samples[-1][0] - instant if collector.samples else math.nan
        print(f"N={args.n}: {'all' if done else 'not all'} enqueued, last {last:.3f} s after")
        redis = busiest_commands(redis_before, redis_after)
        for name, spent in redis.items():
            print(f"  Redis {name}: {spent['calls']} calls, {spent['s']:.3f} s inside Redis")
        if not raw.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors.decode(errors='replace')}")
    finally:
        procs.stop_all()
    own, inclusive, total = summarise(raw)
    print(f"{total} samples at {args.rate}/s")
    for title, table in (
        ("own time", own),
        ("inclusive, the scheduler's own functions", inclusive),
    ):
        print(f"-- {title}")
        for frame, share in table.items():
            print(f"{100 * share:5.1f}%  {frame}")
    print(f"collapsed stacks: {raw}")
    result = {
        "n": args.n,
        "complete": done,
        "last_s": round(last, 4),
        "samples": total,
        "rate_hz": args.rate,
        "own": own,
        "inclusive": inclusive,
        "redis_commands": redis,
        "scheduler_version": ours.version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = BENCH_DIR / "results" / "profile.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def profile_startup(n: int, distinct: int, rate: int, out: Path | None) -> None:
    """py-spy runs the node itself, from the interpreter's start until it leads."""
    workdir = Path(tempfile.mkdtemp(prefix="scheduler-profile-"))
    out = out or workdir
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"startup-{n}.collapsed"
    procs = Procs(workdir / "logs")
    try:
        server = RedisServer(procs, workdir / "redis")
        jobs = never_due(n, distinct, time.time())
        config = ours.write_config(workdir / "startup.toml", server.url, jobs)
        command = [
            str(PY_SPY), "record", "--rate", str(rate), "--format", "raw",
            "--output", str(raw), "--", str(ours.PYTHON), "-m", "scheduler", "run",
            "--config", str(config), "--node-id", "a",
        ]  # fmt: skip
        spy = procs.start("py-spy-startup", command, clean_env())
        started = time.monotonic()
        wait_until(
            lambda: ours.READY_LINE in spy.log_text(), timeout_s=300, what="the node to lead"
        )
        took = time.monotonic() - started
        spy.signal(2)  # SIGINT: py-spy writes what it has; the node gets it too and stops
        spy.popen.wait(timeout=60)
    finally:
        procs.stop_all()
    own, inclusive, total = summarise(raw)
    print(
        f"N={n} ({distinct} distinct): leading {took:.2f} s after the spawn (under py-spy); "
        f"{total} samples"
    )
    for title, table in (
        ("own time", own),
        ("inclusive, the scheduler's own functions", inclusive),
    ):
        print(f"-- {title}")
        for frame, share in table.items():
            print(f"{100 * share:5.1f}%  {frame}")
    print(f"collapsed stacks: {raw}")


def summarise(raw: Path, top: int = 15) -> tuple[dict[str, float], dict[str, float], int]:
    """Shares of samples per function, from py-spy's collapsed stacks: by own time, and by
    time under each of the scheduler's own functions; and the number of samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread"):
            frames = frames[1:]
        if not frames:  # a thread sampled with no Python frame on its stack
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += count
    ours_only = Counter({f: c for f, c in inclusive.items() if "(scheduler/" in f})
    return (
        {frame: round(count / total, 3) for frame, count in own.most_common(top)},
        {frame: round(count / total, 3) for frame, count in ours_only.most_common(top)},
        total,
    )


def _short(frame: str) -> str:
    """`fn (path/to/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py)`: lines of one function
    are added up."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


if __name__ == "__main__":
    main()
