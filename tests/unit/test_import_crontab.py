"""`import crontab`'s pure parts: crontab lines as shell jobs, and the output loads back."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.importers.crontab import (
    CronLine,
    EnvSetting,
    LineProblem,
    import_crontab,
    parse_line,
)
from scheduler.importers.toml_text import ImportedJob, ImportResult, render
from tests.configs import config_file

SINCE = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("", None),
        ("   # m h dom mon dow command", None),
        ("PATH=/usr/bin:/bin", EnvSetting("PATH", "/usr/bin:/bin")),
        ('  GREETING = "hello world" ', EnvSetting("GREETING", "hello world")),
        ("*/5 * * * *   /opt/poll  --fast", CronLine(1, "*/5 * * * *   /opt/poll  --fast",
                                                     "*/5 * * * *", None, "/opt/poll  --fast")),
        ("@hourly /opt/x", CronLine(1, "@hourly /opt/x", "0 * * * *", None, "/opt/x")),
        ("@ANNUALLY /opt/x", CronLine(1, "@ANNUALLY /opt/x", "0 0 1 1 *", None, "/opt/x")),
        (r"0 4 * * * date +\%F", CronLine(1, r"0 4 * * * date +\%F", "0 4 * * *", None,
                                          "date +%F")),
    ],
)  # fmt: skip
def test_lines(line: str, parsed: object) -> None:
    assert parse_line(1, line, user_field=False) == parsed


def test_a_user_field() -> None:
    assert parse_line(7, "17 * * * * root cd / && run-parts /etc/cron.hourly", True) == (
        CronLine(7, "17 * * * * root cd / && run-parts /etc/cron.hourly", "17 * * * *", "root",
                 "cd / && run-parts /etc/cron.hourly")
    )  # fmt: skip
    assert parse_line(8, "@daily backup /opt/backup", True) == CronLine(
        8, "@daily backup /opt/backup", "0 0 * * *", "backup", "/opt/backup"
    )


@pytest.mark.parametrize(
    ("line", "user_field", "why"),
    [
        ("@reboot /opt/warm", False, "@reboot runs once when one host boots; a cluster of "
         "schedulers has no such moment (a systemd unit on that host is the equivalent)"),
        ("0 5 * * * mail -s hi root%body", False, "the command has an unescaped %, which cron "
         "turns into a newline and sends what follows to the command's stdin; write \\% for a "
         "literal % or move the input into a script"),
        ("@every 5m /opt/x", False, "unknown macro '@every' (cron knows @yearly, @annually, "
         "@monthly, @weekly, @daily, @midnight, @hourly)"),
        ("0 5 * * *", False, "expected a schedule and a command, got '0 5 * * *'"),
        ("0 5 * * * root", True, "expected a schedule, a user and a command, got '0 5 * * * root'"),
    ],
)  # fmt: skip
def test_lines_that_cannot_be_imported_say_why(line: str, user_field: bool, why: str) -> None:
    with pytest.raises(LineProblem) as caught:
        parse_line(1, line, user_field)
    assert str(caught.value) == why


CRONTAB = r"""# m h dom mon dow command
SHELL=/bin/bash
MAILTO=ops@example.com
*/15 * * * * /usr/local/bin/poll-queue --verbose
PATH=/usr/local/bin:/usr/bin:/bin
30 2 * * 1-5 /usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1
@daily /usr/local/bin/backup.sh --incremental
@reboot /usr/local/bin/warm-cache
0 3 */2 * mon-fri /opt/rotate
CRON_TZ=Europe/Berlin
30 2 * * * /opt/nightly "a b"
61 * * * * /opt/bad
"""

EXPECTED = r"""# line 3: MAILTO=ops@example.com: MAILTO is not supported: what a run printed (its tail) is in `scheduler history`, and `alert_after` reports a job that stopped succeeding
# line 8 not imported: @reboot runs once when one host boots; a cluster of schedulers has no such moment (a systemd unit on that host is the equivalent): @reboot /usr/local/bin/warm-cache
# line 12 not imported: schedule '61 * * * *': minute 61 is out of range 0-59: 61 * * * * /opt/bad

# line 4: */15 * * * * /usr/local/bin/poll-queue --verbose
[jobs.poll-queue-1]
command = ["/bin/bash", "-c", "/usr/local/bin/poll-queue --verbose"]
cron = "*/15 * * * *"

# line 6: 30 2 * * 1-5 /usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1
[jobs."backup.sh-1"]
command = ["/bin/bash", "-c", "/usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1"]
cron = "30 2 * * 1-5"
env = { PATH = "/usr/local/bin:/usr/bin:/bin" }

# line 7: @daily /usr/local/bin/backup.sh --incremental
[jobs."backup.sh-2"]
command = ["/bin/bash", "-c", "/usr/local/bin/backup.sh --incremental"]
cron = "0 0 * * *"
env = { PATH = "/usr/local/bin:/usr/bin:/bin" }

# line 9: 0 3 */2 * mon-fri /opt/rotate
# croniter (Airflow, rq-scheduler) fires 2026-12-04T03:00:00+00:00, this cron fires 2026-12-07T03:00:00+00:00: croniter ORs a */n day field with the other day field; cronie ANDs them when either starts with *
[jobs.rotate-1]
command = ["/bin/bash", "-c", "/opt/rotate"]
cron = "0 3 */2 * mon-fri"
env = { PATH = "/usr/local/bin:/usr/bin:/bin" }

# line 11: 30 2 * * * /opt/nightly "a b"
# croniter (Airflow, rq-scheduler) fires 2027-10-31T02:30:00+01:00, this cron fires 2027-11-01T02:30:00+01:00: this project follows cronie across the daylight-saving change
[jobs.nightly-1]
command = ["/bin/bash", "-c", "/opt/nightly \"a b\""]
cron = "30 2 * * *"
timezone = "Europe/Berlin"
env = { PATH = "/usr/local/bin:/usr/bin:/bin" }
"""


def test_a_crontab_becomes_shell_jobs() -> None:
    result = import_crontab(CRONTAB, "my.cron", user_field=False, since=SINCE)
    assert render(result) == EXPECTED
    assert result.problems == (
        "my.cron:3: MAILTO is not supported: what a run printed (its tail) is in `scheduler "
        "history`, and `alert_after` reports a job that stopped succeeding",
        "my.cron:8: not imported: @reboot runs once when one host boots; a cluster of "
        "schedulers has no such moment (a systemd unit on that host is the equivalent)",
        "my.cron:12: not imported: schedule '61 * * * *': minute 61 is out of range 0-59",
    )


def test_names_do_not_move_when_other_lines_are_added() -> None:
    before = import_crontab("0 1 * * * /opt/a\n0 2 * * * /opt/b\n", "c", False, SINCE)
    after = import_crontab("0 0 * * * /opt/new\n0 1 * * * /opt/a\n0 2 * * * /opt/b\n", "c",
                           False, SINCE)  # fmt: skip
    assert [j.name for j in before.jobs] == ["a-1", "b-1"]
    assert [j.name for j in after.jobs] == ["new-1", "a-1", "b-1"]


def test_a_cron_d_file_sets_the_user_and_loads_as_a_config(tmp_path: Path) -> None:
    text = "LANG=C\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
    result = import_crontab(text, "cron.d-sample", user_field=True, since=SINCE)
    [job] = result.jobs
    assert dict(job.keys) == {
        "command": ["/bin/sh", "-c", "cd / && run-parts --report /etc/cron.hourly"],
        "cron": "17 * * * *",
        "user": "root",
        "env": {"LANG": "C"},
    }
    full = import_crontab(CRONTAB, "my.cron", user_field=False, since=SINCE)
    config = load_config(config_file(tmp_path, "[scheduler]\n" + render(result) + render(full)))
    cd = config.jobs["cd-1"]
    assert (cd.task, cd.command, cd.schedule) == (
        "jobs.builtin.shell", ("/bin/sh", "-c", "cd / && run-parts --report /etc/cron.hourly"),
        "17 * * * *",
    )  # fmt: skip
    assert cd.shell is not None
    assert (cd.shell.user, dict(cd.shell.env)) == ("root", {"LANG": "C"})
    nightly = config.jobs["nightly-1"]
    assert (nightly.command[2], nightly.timezone.key) == ('/opt/nightly "a b"', "Europe/Berlin")
    assert len(config.jobs) == 6


def test_nothing_to_import() -> None:
    result = import_crontab("# only comments\n\nMAILTO=x\n", "empty", False, SINCE)
    assert result.jobs == ()


def test_toml_text_round_trips_what_a_command_can_hold() -> None:
    command = 'printf "%s\\t%s\\n" a\tb \x01 \x7f — ü \\ "q"'
    job = ImportedJob("x.y", (("command", ["/bin/sh", "-c", command]),
                              ("env", {"A.B": "1", "": "2"})))  # fmt: skip
    text = render(ImportResult(jobs=(job,)))
    assert tomllib.loads(text) == {
        "jobs": {"x.y": {"command": ["/bin/sh", "-c", command], "env": {"A.B": "1", "": "2"}}}
    }
