"""`scheduler import beat` and `scheduler import crontab` as a user runs them: TOML on stdout
that `scheduler validate` accepts, problems one line each on stderr, exit 0 or 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from scheduler.cli import app
from tests.configs import config_file

ROOT = Path(__file__).resolve().parents[2]
SINCE = "2026-12-02T12:00:00Z"

APP_MODULE = """
from celery import Celery
from celery.schedules import crontab

app = Celery("shop", broker="memory://")
app.conf.timezone = "Europe/Berlin"
app.conf.beat_schedule = {
    "nightly report": {"task": "shop.report", "schedule": crontab(minute=30, hour=2)},
    "friday13": {"task": "shop.luck", "schedule": crontab(0, 0, day_of_week=5, day_of_month=13)},
    "add": {"task": "shop.add", "schedule": 30.0, "args": (4, 4),
            "options": {"queue": "math", "priority": 3}},
    "tick": {"task": "shop.tick", "schedule": 0.25},
}
"""
EMPTY_MODULE = """
from celery import Celery
app = Celery("empty", broker="memory://")
app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 0.25}}
"""


def scheduler(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_import_beat_prints_toml_that_validates(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(APP_MODULE, encoding="utf-8")
    done = scheduler(tmp_path, "import", "beat", "shop:app", "--since", SINCE)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        # 02:30 does not exist on 2027-03-28 in Berlin: this project fires right after the gap
        # (README), celery's wall-clock arithmetic half an hour later.
        "beat_schedule['nightly report']: celery fires 2027-03-28T03:30:00+02:00, this cron "
        "fires 2027-03-28T03:00:00+02:00: celery's crontab arithmetic differs around a "
        "daylight-saving change",
        "beat_schedule['friday13']: celery fires 2027-08-13T00:00:00+02:00, this cron fires "
        "2026-12-04T00:00:00+01:00: celery's crontab() needs day_of_month AND day_of_week to "
        "match; cron (and this project) fires on either when both are restricted",
        "beat_schedule['tick']: not imported: interval 0.25s is not whole seconds of at least "
        "1s, which `every` needs",
    ]
    assert done.stdout.startswith(
        "# Imported by `scheduler import beat shop:app`: 4 beat entries, 3 jobs\n"
    )
    assert (
        '[jobs.nightly-report]\ntask = "shop.report"\ncron = "30 2 * * *"\ntimezone = '
        in done.stdout
    )
    config = config_file(tmp_path, "[scheduler]\n" + done.stdout)
    checked = scheduler(tmp_path, "validate", "-c", str(config))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{config}: ok, 3 jobs, config hash ")


def test_import_beat_exits_2_when_nothing_imports_or_the_app_is_not_there(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty.py").write_text(EMPTY_MODULE, encoding="utf-8")
    (tmp_path / "broken.py").write_text("raise RuntimeError('no settings')\n", encoding="utf-8")
    nothing = scheduler(tmp_path, "import", "beat", "empty")  # finds `app` by itself
    assert nothing.returncode == 2
    assert nothing.stderr.splitlines() == [
        "beat_schedule['tick']: not imported: interval 0.25s is not whole seconds of at least "
        "1s, which `every` needs"
    ]
    assert "# nothing could be imported\n" in nothing.stdout
    broken = scheduler(tmp_path, "import", "beat", "broken:app")
    assert (broken.returncode, broken.stdout) == (2, "")
    assert broken.stderr == "scheduler: cannot import broken: RuntimeError: no settings\n"
    missing = scheduler(tmp_path, "import", "beat", "empty:celery_app")
    assert (missing.returncode, missing.stderr) == (
        2, "scheduler: empty has no celery_app (name the app: empty:APP)\n",
    )  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_import_crontab_prints_shell_jobs_that_validate(tmp_path: Path) -> None:
    crontab = tmp_path / "backup.cron"
    crontab.write_text(
        "MAILTO=ops@example.com\n"
        "30 2 * * 1-5 root /usr/local/bin/backup.sh --full\n"
        "@reboot root /usr/local/bin/warm-cache\n",
        encoding="utf-8",
    )
    code, out, err = run("import", "crontab", str(crontab), "--user-field", "--since", SINCE)
    assert code == 0, err
    assert err.splitlines() == [
        "backup.cron:1: MAILTO is not supported: what a run printed (its tail) is in "
        "`scheduler history`, and `alert_after` reports a job that stopped succeeding",
        "backup.cron:3: not imported: @reboot runs once when one host boots; a cluster of "
        "schedulers has no such moment (a systemd unit on that host is the equivalent)",
    ]
    assert (
        '[jobs."backup.sh-1"]\n'
        'command = ["/bin/sh", "-c", "/usr/local/bin/backup.sh --full"]\n'
        'cron = "30 2 * * 1-5"\n'
        'user = "root"\n'
    ) in out
    config = config_file(tmp_path, "[scheduler]\n" + out)
    code, checked, err = run("validate", "-c", str(config))
    assert code == 0, err
    assert checked.startswith(f"{config}: ok, 1 jobs, config hash ")


def test_import_crontab_exits_2_on_nothing_or_no_file(tmp_path: Path) -> None:
    only_reboot = tmp_path / "reboot.cron"
    only_reboot.write_text("@reboot /opt/warm\n", encoding="utf-8")
    code, out, err = run("import", "crontab", str(only_reboot))
    assert code == 2
    assert err.startswith("reboot.cron:1: not imported: @reboot runs once")
    code, out, err = run("import", "crontab", str(tmp_path / "absent.cron"))
    assert (code, out) == (2, "")
    assert err.startswith(f"scheduler: {tmp_path / 'absent.cron'}: ")
    assert len(err.splitlines()) == 1
