"""Message signing's cost on the hot path: `MessageFactory.redis_push` for 10,000 fires,
unsigned and signed (HMAC-SHA256, `message_key_file`), alternated in one run so both see the
same machine load.

    .venv/bin/python bench/signing.py [--rounds N]

The templates are built first, as a leader does at take-over; what is timed is what a burst
pays per fire. A private redis-server is started only because the factory captures kombu's
message shape through a Redis channel.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from common import Procs, RedisServer

from scheduler.jobspec import JobSpec
from scheduler.messages import MessageFactory
from scheduler.triggers import EveryTrigger

FIRES = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    procs = Procs(Path(tempfile.mkdtemp(prefix="signing-bench-")))
    try:
        server = RedisServer(procs, procs.log_dir / "redis")
        every = EveryTrigger(1, datetime(1970, 1, 1, tzinfo=UTC))
        jobs = [
            JobSpec(name=f"job-{index}", task="app.tasks.report", kind="every", schedule="1s",
                    timezone=ZoneInfo("UTC"), trigger=every, args=("x", index),
                    kwargs={"k": index})
            for index in range(FIRES)
        ]  # fmt: skip
        factories = {
            label: MessageFactory("bench", server.url, {}, message_key=key)
            for label, key in (("unsigned", None), ("signed", b"k" * 32))
        }
        for factory in factories.values():
            for job in jobs:
                factory.template(job)
        times: dict[str, list[float]] = {label: [] for label in factories}
        for round_ in range(args.rounds):
            for label, factory in factories.items():
                started = time.perf_counter()
                for job in jobs:
                    factory.redis_push(job, 1_700_000_000 + round_, 7)
                times[label].append(time.perf_counter() - started)
        print(f"redis_push, {FIRES} fires, {args.rounds} rounds alternated")
        for label, seconds in times.items():
            print(f"  {label:>8}: best {min(seconds) * 1000:6.1f} ms")
        ratio = min(times["signed"]) / min(times["unsigned"])
        print(f"  ratio signed / unsigned (best): {ratio:.2f}")
        for factory in factories.values():
            factory.close()
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
