"""`scheduler run`'s log formats: JSON lines that parse one by one (a traceback inside its
line), syslog priority prefixes when stderr is journald's stream, and a fixed --log-level."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pytest

from scheduler import logs
from tests.integration.harness import REPO_ROOT, run_cli

log = logging.getLogger("scheduler.test")


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """configure() replaces the root logger's handlers: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def log_an_exception() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("job failed", extra={"job": "nightly"})


def journal_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TextIO:
    """A stream that $JOURNAL_STREAM names, as systemd sets it for a service's stderr."""
    stream = (tmp_path / "journal").open("w+", encoding="utf-8")
    found = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
    return stream


def test_json_lines_parse_one_by_one_with_the_traceback_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    logs.configure("info", "json", out)
    log.debug("not shown at INFO")
    log.info("node %s starting", "n1")
    log_an_exception()
    log.warning("two\nlines")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    started, failed, warned = (json.loads(line) for line in lines)
    assert list(started) == ["time", "level", "logger", "message"]
    assert (started["level"], started["logger"], started["message"]) == (
        "INFO",
        "scheduler.test",
        "node n1 starting",
    )
    when = datetime.fromisoformat(started["time"])
    assert when.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert failed["level"] == "ERROR"
    assert failed["message"] == "job failed"
    assert failed["job"] == "nightly"  # extra= fields come along
    assert failed["exception"].startswith("Traceback (most recent call last):\n")
    assert failed["exception"].endswith("ZeroDivisionError: division by zero")
    assert warned["message"] == "two\nlines"


def test_plain_lines_have_time_level_logger_and_indented_continuations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    logs.configure("INFO", "plain", out)
    log.info("hello")
    log_an_exception()
    first, second, *traceback = out.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO scheduler\.test: hello", first)
    assert re.fullmatch(r"\S+ \S+ ERROR scheduler\.test: job failed", second)
    assert traceback[0] == "    Traceback (most recent call last):"
    assert traceback[-1] == "    ZeroDivisionError: division by zero"
    # Every continuation is indented: a record starts at column 0 and nowhere else.
    assert all(line.startswith("    ") for line in traceback)


def test_under_journald_every_line_carries_the_syslog_priority_and_no_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = journal_file(tmp_path, monkeypatch)
    logs.configure("DEBUG", "plain", stream)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log_an_exception()
    stream.flush()
    lines = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert lines[:5] == [
        "<7>scheduler.test: d",
        "<6>scheduler.test: i",
        "<4>scheduler.test: w",
        "<3>scheduler.test: e",
        "<3>scheduler.test: job failed",
    ]
    # journald makes each line an entry: the traceback's keep the record's priority.
    assert lines[5] == "<3>    Traceback (most recent call last):"
    assert lines[-1] == "<3>    ZeroDivisionError: division by zero"
    assert all(line.startswith("<3>    ") for line in lines[5:])


def test_json_under_journald_is_prefixed_so_the_journal_keeps_the_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = journal_file(tmp_path, monkeypatch)
    logs.configure("INFO", "json", stream)
    log.warning("careful")
    stream.flush()
    (line,) = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert line.startswith("<4>{")
    assert json.loads(line.removeprefix("<4>"))["message"] == "careful"


def test_a_journal_stream_that_is_not_stderr_means_plain_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inherited by a child whose stderr goes elsewhere: the variable alone proves nothing.
    journal_file(tmp_path, monkeypatch)
    out = (tmp_path / "other").open("w+", encoding="utf-8")
    logs.configure("INFO", "plain", out)
    log.info("hello")
    out.flush()
    (line,) = (tmp_path / "other").read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(r"\S+ \S+ INFO scheduler\.test: hello", line)


@pytest.mark.parametrize("value", ["", "garbage", "1:2:3", "x:y"])
def test_a_malformed_journal_stream_is_not_journald(value: str, tmp_path: Path) -> None:
    with (tmp_path / "f").open("w", encoding="utf-8") as stream:
        assert logs.journal_stream_is(stream, value) is False


def test_priorities_follow_syslog() -> None:
    assert [logs.priority(n) for n in (5, 10, 15, 20, 30, 40, 50, 60)] == [7, 7, 7, 6, 4, 3, 2, 2]


def test_warnings_become_log_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    import warnings  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("WARNING", "py.warnings")
    assert "DeprecationWarning: old API" in record["message"]


def test_importing_configures_nothing() -> None:
    code = (
        "import logging, scheduler.logs, scheduler.heartbeat, scheduler.cli.daemon\n"
        "root = logging.getLogger()\n"
        "assert root.handlers == [] and root.level == logging.WARNING, root.handlers\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--log-level", "bogus"], "Invalid value for '--log-level': 'bogus' is not one of DEBUG, INFO, WARNING, ERROR"),
        (["--log-format", "xml"], "Invalid value for '--log-format': 'xml' is not one of plain, json"),
    ],
)  # fmt: skip
def test_a_bad_log_option_is_a_usage_error(args: list[str], error: str, tmp_path: Path) -> None:
    done = run_cli(["run", *args], {**os.environ, "SCHEDULER_CONFIG": str(tmp_path / "none")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: {error}"
    assert done.stdout == ""
