"""The claim script alone: one chunk of 1,000 fires (each with a 600-byte message to LPUSH),
this tree's script beside another revision's, alternated in one run against one private
redis-server, so the ratio holds on a noisy machine.

    .venv/bin/python bench/claim_script.py [--against REV] [--rounds N]

Every job has a watermark (it fired the slot before), as in a steady burst. Times the whole
EVALSHA round trip from the client, which is what a burst waits for.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO_ROOT, Procs, RedisServer

from scheduler.store.scripts import FENCED_MARK, script_text

KEYS = [f"b:{name}" for name in ("lease", "watermarks", "last_fire", "history", "missed",
        "paused", "paused_skips", "outbox", "missed_open")]  # fmt: skip
LEASE = "the lease value"
FIRES = 1000
MESSAGE = b"x" * 600
SLOT_0 = 1_700_000_000  # in the past: the time fence lets it through


def chunk_args(slot_s: int, with_offset: bool) -> list[object]:
    """ARGV of one chunk; scripts before the time fence had no clock-offset argument."""
    args: list[object] = [LEASE, 5, 10_000, 0, *([1] if with_offset else []), 0, FIRES]
    for index in range(FIRES):
        args += [f"job{index}", slot_s, "celery", MESSAGE]
    return args


def revision_script(revision: str, name: str) -> str:
    """Script `name` as `revision` had it, with its own fenced.lua in place of `--@fenced`,
    as script_text does for this tree."""

    def show(script: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "show", f"{revision}:scheduler/store/lua/{script}.lua"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    text = show(name)
    return text.replace(FENCED_MARK, show("fenced"), 1) if FENCED_MARK in text else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against", default="c4bf5dd", help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    theirs = revision_script(args.against, "claim")
    procs = Procs(Path(tempfile.mkdtemp(prefix="claim-bench-")))
    try:
        server = RedisServer(procs, procs.log_dir / "redis")
        client = server.client
        scripts: dict[str, tuple[Callable[..., object], bool]] = {
            # Scripts from before the time fence took no clock-offset argument.
            args.against: (client.register_script(theirs), "ARGV[5] how far" in theirs),
            "this tree": (client.register_script(script_text("claim")), True),
        }
        times: dict[str, list[float]] = {name: [] for name in scripts}
        slot_s = SLOT_0
        for _ in range(args.rounds):
            for name, (script, with_offset) in scripts.items():
                client.flushall()
                client.set(KEYS[0], LEASE)
                slot_s += 1
                # Jobs that fired before: the script reads each one's watermark.
                client.hset(KEYS[1], mapping={f"job{index}": slot_s - 1 for index in range(FIRES)})
                argv = chunk_args(slot_s, with_offset)
                started = time.perf_counter()
                script(keys=KEYS, args=argv)
                times[name].append(time.perf_counter() - started)
                assert client.llen("celery") == FIRES, f"{name}: not every fire was enqueued"
        print(f"claim script, {FIRES} fires per call, {args.rounds} rounds alternated")
        for name, seconds in times.items():
            print(f"  {name:>10}: median {statistics.median(seconds) * 1000:6.2f} ms, "
                  f"min {min(seconds) * 1000:6.2f} ms")  # fmt: skip
        mine, other = (statistics.median(times[name]) for name in ("this tree", args.against))
        print(f"  ratio this tree / {args.against}: {mine / other:.2f}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
