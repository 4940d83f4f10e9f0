"""The benchmark runner: this project's scheduler beside celery beat and RedBeat.

    bench/.venv-peers/bin/python bench/run.py [--quick] [--only burst,precision,...]

Starts its own redis-server on a free port (never the shared one), runs each measurement
against all three schedulers in turn, and writes bench/results/<full|quick>/<name>.json plus
meta.json (machine, versions, date). `make bench` creates the peers' venv, runs this, then
bench/report.py, which renders docs/performance.md and the chart from those files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import burst
import failover
import idle
import ours
import precision
import worker
from common import BENCH_DIR, Procs, RedisServer, machine
from peers.drivers import versions

MEASUREMENTS = ("burst", "precision", "failover", "idle", "worker")


def plans(quick: bool, ours_n: list[int] | None, peers_n: list[int] | None) -> dict[str, Any]:
    if quick:
        return {
            "burst": burst.BurstPlan(
                ours_n=tuple(ours_n if ours_n is not None else (100, 1_000, 10_000)),
                peers_n=tuple(peers_n if peers_n is not None else (100, 1_000)),
                repeats=1,
                window_s=30.0,
            ),
            "precision": precision.PrecisionPlan(
                small_n=20, large_n=1_000, duration_s=15, peers=True
            ),
            "failover": failover.FailoverPlan(rounds=2),
            "idle": idle.IdlePlan(
                ours_cases=((1_000, 1_000), (10_000, 1_000), (100_000, 1_000), (100_000, 100_000)),
                peers_cases=((1_000, 1_000), (10_000, 1_000)),
                window_s=15.0,
                start_timeout_s=120.0,
            ),
            "worker": 1_000,
        }
    return {
        "burst": burst.BurstPlan(
            ours_n=tuple(ours_n if ours_n is not None else (100, 1_000, 10_000, 100_000)),
            peers_n=tuple(peers_n if peers_n is not None else (100, 1_000, 10_000)),
            repeats=3,
            window_s=60.0,
        ),
        "precision": precision.PrecisionPlan(small_n=20, large_n=1_000, duration_s=60, peers=True),
        "failover": failover.FailoverPlan(rounds=5),
        "idle": idle.IdlePlan(
            ours_cases=((1_000, 1_000), (10_000, 1_000), (100_000, 1_000), (100_000, 100_000)),
            peers_cases=((1_000, 1_000), (10_000, 1_000), (100_000, 1_000)),
            window_s=60.0,
            start_timeout_s=300.0,
        ),
        "worker": 10_000,
    }


def _numbers(text: str | None) -> list[int] | None:
    """ "10000,100_000" -> [10000, 100000]; "none" -> [] (skip); None -> None (the plan's)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    return [int(part.replace("_", "")) for part in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few N, short windows (~10 min)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--ours-n", help="burst sizes for ours, e.g. 10000 (default: the plan)")
    parser.add_argument("--peers-n", help="burst sizes for the peers, e.g. 1000,10000, or none")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(MEASUREMENTS)
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    mode = "quick" if args.quick else "full"
    out = BENCH_DIR / "results" / mode
    out.mkdir(parents=True, exist_ok=True)
    plan = plans(args.quick, _numbers(args.ours_n), _numbers(args.peers_n))
    workdir = Path(tempfile.mkdtemp(prefix="scheduler-bench-"))
    print(f"bench ({mode}): {', '.join(chosen)}; work dir {workdir}")
    meta = _meta(mode)
    run_id = meta["written_at"]  # burst cells of one invocation share it: ratios need that
    _write(out / "meta.json", meta, merge=True)
    procs = Procs(workdir / "logs")
    failed = 0
    try:
        server = RedisServer(procs, workdir / "redis")
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "burst": lambda: burst.run(server, workdir, plan["burst"]),
            "precision": lambda: precision.run(server, workdir, plan["precision"]),
            "failover": lambda: failover.run(server, workdir, plan["failover"]),
            "idle": lambda: idle.run(server, workdir, plan["idle"]),
            "worker": lambda: worker.run(server, workdir, plan["worker"]),
        }
        for name in chosen:
            print(f"== {name}")
            started = time.monotonic()
            load_before = [round(x, 2) for x in os.getloadavg()]
            try:
                result = runners[name]()
            except Exception as exc:  # noqa: BLE001 (one measurement's failure is reported)
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {exc}"}
                failed += 1
            result["took_s"] = round(time.monotonic() - started, 1)
            result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            result["redis_server"] = server.version()
            result["scheduler_version"] = meta["versions"]["scheduler"]
            result["load_average_before"] = load_before
            if name == "burst":
                _stamp_runs(result, run_id)
                _keep_other_sizes(out / "burst.json", result)
            _write(out / f"{name}.json", result)
            print(f"   {name} took {result['took_s']} s -> {out / (name + '.json')}")
    finally:
        procs.stop_all()
        if args.keep or failed:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def _meta(mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "machine": machine(),
        "versions": {"scheduler": ours.version(), **versions()},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _stamp_runs(result: dict[str, Any], run_id: str) -> None:
    for by_n in result.get("schedulers", {}).values():
        for entry in by_n.values():
            entry["run"] = run_id


def _keep_other_sizes(path: Path, result: dict[str, Any]) -> None:
    """A burst run of some sizes replaces those sizes only; the rest of the file stays."""
    if not path.exists() or "schedulers" not in result:
        return
    previous = json.loads(path.read_text()).get("schedulers", {})
    for scheduler, by_n in previous.items():
        merged = {**by_n, **result["schedulers"].get(scheduler, {})}
        result["schedulers"][scheduler] = merged


def _write(path: Path, data: dict[str, Any], merge: bool = False) -> None:
    if merge and path.exists():
        data = {**json.loads(path.read_text()), **data}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
