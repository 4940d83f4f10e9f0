"""Importing the worker hooks connects no Celery signal and starts no thread; installing them,
or binding a RunOnceTask to an app, connects the claim-finishing handler once, however often.

Each case runs in a fresh interpreter: this one has long imported (and installed) everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "redis://127.0.0.1:1/0"  # never contacted: nothing below sends a task

# Prints, after the case's code, how many receivers each Celery signal has at each `snap(...)`.
PROBE = """
import json, threading
from celery import signals
from celery.utils.dispatch import Signal

snaps = {{}}

def snap(name):
    snaps[name] = {{
        signal_name: len(signal.receivers)
        for signal_name, signal in sorted(vars(signals).items())
        if isinstance(signal, Signal)
    }}
    snaps[name]["threads"] = threading.active_count()

def finishers():
    from jobs.runonce import FINISH_DISPATCH_UID
    return sum(1 for key, _ in signals.task_postrun.receivers if key[0] == FINISH_DISPATCH_UID)

snap("fresh")
{body}
print("probe:", json.dumps(snaps))
"""


def probe(body: str) -> dict[str, dict[str, int]]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SCHEDULER_CONFIG": str(ROOT / "no-such-config.toml")},
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    [line] = [line for line in completed.stdout.splitlines() if line.startswith("probe: ")]
    return dict(json.loads(line.removeprefix("probe: ")))


def test_importing_the_hooks_connects_no_signal_and_starts_no_thread() -> None:
    snaps = probe(
        "import jobs.runonce\n"
        "snap('runonce')\n"
        "import jobs.hooks, jobs, jobs.examples\n"
        "snap('hooks')\n"
    )
    assert snaps["fresh"]["task_postrun"] == 0
    assert snaps["runonce"] == snaps["fresh"]
    assert snaps["hooks"] == snaps["fresh"]


def test_install_connects_the_finish_handler_once_however_often() -> None:
    snaps = probe(
        "from celery import Celery\n"
        "from jobs.hooks import install\n"
        "from jobs.settings import WorkerSettings\n"
        "snap('imported')\n"
        "app = Celery('probe', set_as_current=False)\n"
        f"settings = WorkerSettings({NOWHERE!r}, {NOWHERE!r}, 'probe')\n"
        "install(app, settings)\n"
        "snap('installed')\n"
        "install(app, settings)\n"
        "install(Celery('other', set_as_current=False), settings)\n"
        "snap('reinstalled')\n"
        "snaps['finishers'] = {'count': finishers()}\n"
    )
    assert snaps["imported"] == snaps["fresh"]
    assert snaps["installed"]["task_postrun"] == 1
    assert snaps["reinstalled"]["task_postrun"] == 1
    assert snaps["finishers"] == {"count": 1}
    assert snaps["installed"]["threads"] == snaps["fresh"]["threads"]  # no keeper before a claim


def test_a_run_once_task_bound_without_install_connects_the_finish_handler() -> None:
    # base=RunOnceTask alone: the handler must be connected before a worker builds its tracers,
    # which is when the app is finalized and its tasks bound.
    snaps = probe(
        "from celery import Celery\n"
        "from jobs.runonce import RunOnceTask\n"
        f"app = Celery('probe', broker={NOWHERE!r}, set_as_current=False)\n"
        "@app.task(base=RunOnceTask, shared=False)\n"
        "def mine(): pass\n"
        "snap('declared')\n"
        "app.finalize()\n"
        "snap('bound')\n"
        "snaps['finishers'] = {'count': finishers()}\n"
    )
    assert snaps["declared"]["task_postrun"] == 0  # a lazy task: not bound yet
    assert snaps["bound"]["task_postrun"] == 1
    assert snaps["finishers"] == {"count": 1}
