"""A crontab's text as shell jobs of this project (pure: the text is given).

User crontabs (5 fields and a command) and ``/etc/cron.d`` files (a user field after the
schedule) alike. Cron runs each command through ``/bin/sh -c`` (or ``$SHELL``); the built-in
shell task runs a list without a shell, so every job is ``[shell, "-c", command]`` and keeps
cron's meaning of pipes, redirections and globs. ``NAME=value`` lines become the ``env`` of
the lines below them, as in cron; ``CRON_TZ`` (cronie) their ``timezone``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.errors import InvalidSchedule
from scheduler.importers.differences import croniter_note
from scheduler.importers.names import NameBook, valid_name
from scheduler.importers.sources import ours
from scheduler.importers.toml_text import ImportedJob, ImportResult
from scheduler.jobspec import read_zone
from scheduler.triggers.cron.expression import MACROS  # cron(8)'s, written out

_ENV_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")
_REBOOT = (
    "@reboot runs once when one host boots; a cluster of schedulers has no such moment "
    "(a systemd unit on that host is the equivalent)"
)
_PERCENT = (
    "the command has an unescaped %, which cron turns into a newline and sends what follows "
    "to the command's stdin; write \\% for a literal % or move the input into a script"
)
_MAILTO = (
    "MAILTO is not supported: what a run printed (its tail) is in `scheduler history`, and "
    "`alert_after` reports a job that stopped succeeding"
)


class LineProblem(ValueError):
    """A crontab line that cannot be imported; the message says why."""


@dataclass(frozen=True, slots=True)
class CronLine:
    """One job line: its schedule (five fields), the user field if any, the command as sh
    sees it (``\\%`` already read as ``%``)."""

    number: int
    text: str
    cron: str
    user: str | None
    command: str


@dataclass(frozen=True, slots=True)
class EnvSetting:
    name: str
    value: str


def parse_line(number: int, line: str, user_field: bool) -> CronLine | EnvSetting | None:
    """One line of a crontab; None for a blank line or a comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    env = _ENV_LINE.fullmatch(line)
    if env is not None:
        return EnvSetting(env.group(1), _unquoted(env.group(2)))
    words = text.split()
    if words[0].startswith("@"):
        if words[0] == "@reboot":
            raise LineProblem(_REBOOT)
        cron = MACROS.get(words[0].lower())
        if cron is None:
            raise LineProblem(f"unknown macro {words[0]!r} (cron knows {', '.join(MACROS)})")
        count = 1
    else:
        count = 5
        cron = " ".join(words[:5])
    count += user_field
    parts = re.split(r"\s+", text, maxsplit=count)
    if len(parts) <= count:
        wanted = "a schedule, a user and a command" if user_field else "a schedule and a command"
        raise LineProblem(f"expected {wanted}, got {text!r}")
    user = parts[count - 1] if user_field else None
    return CronLine(number, text, cron, user, _command(parts[count]))


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _command(text: str) -> str:
    """The command as cron hands it to the shell: ``\\%`` is ``%``; a bare ``%`` is refused."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("\\%", i):
            out.append("%")
            i += 2
            continue
        if text[i] == "%":
            raise LineProblem(_PERCENT)
        out.append(text[i])
        i += 1
    return "".join(out)


def import_crontab(text: str, source: str, user_field: bool, since: datetime) -> ImportResult:
    """Every job line of a crontab's ``text`` (``source`` names it in problems)."""
    env: dict[str, str] = {}
    jobs, notes, problems = [], [], []
    names, seen = NameBook(), dict[str, int]()
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        try:
            parsed = parse_line(number, line, user_field)
        except LineProblem as exc:
            notes.append(f"line {number} not imported: {exc}: {line.strip()}")
            problems.append(f"{where}: not imported: {exc}")
            continue
        if isinstance(parsed, EnvSetting):
            if parsed.name == "MAILTO":
                notes.append(f"line {number}: MAILTO={parsed.value}: {_MAILTO}")
                problems.append(f"{where}: {_MAILTO}")
            else:
                env[parsed.name] = parsed.value
            continue
        if parsed is None:
            continue
        word = valid_name(parsed.command.split()[0].rsplit("/", 1)[-1])
        seen[word] = seen.get(word, 0) + 1
        try:
            keys, comments = _job_keys(parsed, f"{word}-{seen[word]}", dict(env), since)
        except LineProblem as exc:
            notes.append(f"line {number} not imported: {exc}: {parsed.text}")
            problems.append(f"{where}: not imported: {exc}")
            continue
        jobs.append(ImportedJob(names.claim(f"{word}-{seen[word]}"), keys, comments))
    return ImportResult(tuple(jobs), tuple(notes), tuple(problems))


def _job_keys(
    line: CronLine, name: str, env: dict[str, str], since: datetime
) -> tuple[tuple[tuple[str, Any], ...], tuple[str, ...]]:
    shell = env.pop("SHELL", "/bin/sh")
    zone_name = env.pop("CRON_TZ", None)
    try:
        zone = read_zone(zone_name or "UTC")
    except ValueError as exc:
        raise LineProblem(f"CRON_TZ: {exc}") from None
    try:
        mine = ours(line.cron, zone, name)
    except InvalidSchedule as exc:
        raise LineProblem(f"schedule {line.cron!r}: {exc}") from None
    comments = [f"line {line.number}: {line.text}"]
    reference = croniter_note(line.cron, mine, zone, since)
    if reference is not None:
        comments.append(reference)
    keys: list[tuple[str, Any]] = [("command", [shell, "-c", line.command]), ("cron", line.cron)]
    if zone_name is not None:
        keys.append(("timezone", zone.key))
    if line.user is not None:
        keys.append(("user", line.user))
    if env:
        keys.append(("env", env))
    return tuple(keys), tuple(comments)
