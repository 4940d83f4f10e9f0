"""Importing our packages changes nothing: no Celery app, no config read, no zone search path.

Each case runs in a fresh interpreter, since this one has imported (and built) everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.configs import config_file

ROOT = Path(__file__).resolve().parents[2]
HOST_TZPATH = "/usr/share/zoneinfo"

# Counts the Celery apps built, then runs the case's code; prints what the case returns.
PROBE = """
import json, sys
import celery

built = []
original = celery.Celery.__init__

def counting(self, *args, **kwargs):
    built.append(args[0] if args else kwargs.get("main"))
    original(self, *args, **kwargs)

celery.Celery.__init__ = counting
{body}
print("probe:", json.dumps(result))
"""


def probe(body: str, config: Path) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SCHEDULER_CONFIG": str(config), "PYTHONTZPATH": HOST_TZPATH},
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [line for line in completed.stdout.splitlines() if line.startswith("probe: ")]
    return dict(json.loads(lines[-1].removeprefix("probe: ")))


def test_importing_jobs_builds_no_app_and_reads_no_config(tmp_path: Path) -> None:
    # Reading this file would raise ConfigError, so a config read fails the import.
    unreadable = config_file(tmp_path, "[scheduler\n")
    result = probe(
        "import zoneinfo\n"
        "import jobs, jobs.hooks, jobs.runonce, jobs.app, jobs.settings, jobs.scheduled\n"
        "import scheduler, scheduler.cli\n"
        "result = {'built': built, 'tzpath': list(zoneinfo.TZPATH)}",
        unreadable,
    )
    assert result == {"built": [], "tzpath": [HOST_TZPATH]}


def test_celery_finds_our_app_in_jobs_celery(tmp_path: Path) -> None:
    # As `celery -A jobs` does (celery.app.utils.find_app), after `import jobs` and before.
    config = config_file(
        tmp_path, '[scheduler]\nredis_url = "redis://127.0.0.1:1/3"\nnamespace = "probe"\n'
    )
    for setup in ("import jobs", "pass"):
        result = probe(
            f"{setup}\n"
            "import zoneinfo\n"
            "from celery.app.utils import find_app\n"
            "app = find_app('jobs')\n"
            "import jobs.celery\n"
            "result = {'same': app is jobs.celery.app, 'built': built,\n"
            "          'broker': app.conf.broker_url, 'tzpath': list(zoneinfo.TZPATH)}",
            config,
        )
        assert result == {
            "same": True,
            "built": ["jobs"],
            "broker": "redis://127.0.0.1:1/3",
            "tzpath": [],
        }, setup


def test_the_pure_core_imports_nothing_that_talks_to_redis_or_celery() -> None:
    """The engine and the policy work on records: no Redis client, no Celery, no store."""
    completed = subprocess.run(
        [sys.executable, "-c",
         "import sys, scheduler.engine, scheduler.policy, scheduler.records, scheduler.wire; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'celery', 'kombu'}), "
         "sorted(m for m in sys.modules if m.startswith('scheduler.store')))"],
        check=True, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert completed.stdout.strip() == "[] []"
