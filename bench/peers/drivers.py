"""Drive celery beat and RedBeat the way their users do: a ``beat_schedule`` in the app's
config and one ``celery beat`` process, from the peers' own venv (bench/.venv-peers)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import BENCH_DIR, Proc, Procs, clean_env, wait_until
from jobsets import Job

PEERS_DIR = BENCH_DIR / "peers"
PYTHON = BENCH_DIR / ".venv-peers" / "bin" / "python"


@dataclass(frozen=True)
class Peer:
    name: str  # as the tables show it
    slug: str  # in file and process names
    scheduler_class: str | None  # celery beat's -S; None: the default PersistentScheduler
    ready_line: str  # logged once the schedule is set up and the loop ticks

    def start(
        self,
        procs: Procs,
        broker_url: str,
        jobs: Sequence[Job],
        workdir: Path,
        tag: str = "",
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        workdir.mkdir(parents=True, exist_ok=True)
        schedule = workdir / f"{self.slug}{tag}-schedule.json"
        schedule.write_text(json.dumps([_entry(job) for job in jobs]), encoding="utf-8")
        state = workdir / f"{self.slug}{tag}-celerybeat-schedule"
        for stale in workdir.glob(state.name + "*"):
            stale.unlink()
        command = [
            str(PYTHON), "-m", "celery", "-A", "beatapp", "beat",
            "--loglevel=INFO", "--schedule", str(state),
        ]  # fmt: skip
        if self.scheduler_class:
            command += ["-S", self.scheduler_class]
        child_env = clean_env(
            BENCH_BROKER_URL=broker_url,
            BENCH_SCHEDULE=str(schedule),
            PYTHONPATH=str(PEERS_DIR),
            **(env or {}),
        )
        return procs.start(f"{self.slug}{tag}", command, child_env, cwd=PEERS_DIR)

    def wait_ready(self, proc: Proc, timeout_s: float) -> float:
        """Wait until the process logged its ready line; the wall time it was seen."""

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            return self.ready_line in proc.log_text()

        wait_until(ready, timeout_s=timeout_s, what=f"{proc.name} to be ready", interval_s=0.02)
        return time.time()


CELERY_BEAT = Peer("celery beat", "beat", None, "bench: beat ready")
# RedBeat takes its lock in a beat_init handler that runs after ours: ready once it holds it.
REDBEAT = Peer("RedBeat", "redbeat", "redbeat.RedBeatScheduler", "beat: Acquired lock")
PEERS = (CELERY_BEAT, REDBEAT)


def _entry(job: Job) -> dict[str, object]:
    item: dict[str, object] = {"name": job.name, "task": job.task, "queue": job.queue}
    if job.cron is not None:
        if job.cron.second is not None:
            raise ValueError("celery beat and RedBeat have no seconds field in a crontab")
        item["crontab"] = {
            "minute": job.cron.minute,
            "hour": job.cron.hour,
            "day_of_month": job.cron.day_of_month,
            "month_of_year": job.cron.month,
            "day_of_week": job.cron.day_of_week,
        }
    else:
        item["every_s"] = job.every_s
    return item


def versions() -> dict[str, str]:
    """Installed versions in the peers' venv, as pip sees them."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({n: m.version(n) for n in "
        "('celery', 'kombu', 'redis', 'hiredis', 'celery-redbeat', 'matplotlib')}))"
    )
    done = subprocess.run(
        [str(PYTHON), "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result
