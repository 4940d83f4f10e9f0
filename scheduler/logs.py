"""How `scheduler run` writes its logs: plain lines (for journald or a terminal) or JSON lines.

The library only logs; this module, called by the CLI alone, decides where and how. Importing
it configures nothing.

- plain, run by systemd (stderr is the stream $JOURNAL_STREAM names): `<3>logger: message`.
  journald reads the syslog priority from the `<N>` prefix and stamps the time itself.
- plain, elsewhere: `2026-01-02 03:04:05,678 ERROR logger: message`.
- json: one object a line, `{"time", "level", "logger", "message", ...}`, with `exception`
  when one was logged and any `extra=` fields (`job`, ...), from python-json-logger. Under
  journald each line starts with the `<N>` prefix too: journald strips it, so the journal's
  MESSAGE is the bare JSON and its PRIORITY the record's.

Python warnings (a deprecation in a library) become log records too, so that every line of
stderr has the chosen format.

A traceback stays one JSON line. journald's stream protocol has no escape for a newline: every
line becomes an entry of its own. So in plain form each continuation line is indented and, under
journald, carries the record's priority too: `journalctl -p err` shows the whole traceback,
and a reader (or a parser) tells the continuation from a new record by the indent.
"""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter


class Level(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Format(StrEnum):
    plain = "plain"
    json = "json"


# syslog priorities (sd-daemon(3)): what journald files each record under.
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
CONTINUATION_INDENT = "    "


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between two take the more severe)."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


def journal_stream_is(stream: TextIO, journal_stream: str | None) -> bool:
    """Whether `stream` is the journald stream $JOURNAL_STREAM ("device:inode") names, as
    systemd.exec(5) says to check: an inherited variable alone would not mean it is."""
    if not journal_stream:
        return False
    device, _, inode = journal_stream.partition(":")
    try:
        found = os.fstat(stream.fileno())
        return (found.st_dev, found.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):  # no file descriptor (a test's StringIO), or a bad value
        return False


def indent_continuations(text: str, prefix: str = "") -> str:
    """Every line after the first indented (and prefixed): one record stays recognisable."""
    first, *rest = text.split("\n")
    return "\n".join([prefix + first, *(prefix + CONTINUATION_INDENT + line for line in rest)])


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger: message`, continuation lines indented."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return indent_continuations(super().format(record))


class JournalFormatter(logging.Formatter):
    """`<priority>logger: message` on every line of the record; journald adds the time."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return indent_continuations(super().format(record), f"<{priority(record.levelno)}>")


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC) first, then level, logger, message,
    exception (the traceback as one string), then whatever `extra=` fields were given;
    `journald` puts the record's `<priority>` before it."""

    def __init__(self, journald: bool = False) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
            json_ensure_ascii=False,
        )
        self.journald = journald

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {"time": log_data.pop("time"), **log_data}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)  # json.dumps escapes every newline: always one line
        return f"<{priority(record.levelno)}>{line}" if self.journald else line


def formatter_for(fmt: Format, stream: TextIO, journal_stream: str | None) -> logging.Formatter:
    journald = journal_stream_is(stream, journal_stream)
    if fmt is Format.json:
        return JsonLineFormatter(journald)
    return JournalFormatter() if journald else PlainFormatter()


def configure(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (stderr) in format `fmt`
    ("plain" or "json"), replacing whatever handlers the root logger had. Returns the handler."""
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter_for(Format(fmt), out, os.environ.get("JOURNAL_STREAM")))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(Level(level.upper()).value)
    logging.captureWarnings(True)
    return handler
