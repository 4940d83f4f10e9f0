"""Run one shell job's command: no shell, a minimal environment, a timeout that kills the whole
process group, and only the tail of what it printed kept.

No Celery and no Redis here: `run_command` takes what to run and returns what happened, so the
rules are tested on real processes without a worker.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# How much of stdout and of stderr is kept: the last bytes of each.
TAIL_BYTES = 2048
# After the timeout: SIGTERM to the process group, then SIGKILL this long after.
KILL_GRACE_S = 5.0
# Once the command exited, how long its output pipes may stay open (a background child of the
# command still holding them) before we stop waiting for the rest of its output.
DRAIN_WAIT_S = 2.0
# The PATH a command gets when the worker itself has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_READ_CHUNK = 65536


class ShellRefused(Exception):
    """The command cannot be run as asked (another user without root): nothing was started."""


@dataclass(frozen=True, slots=True)
class Command:
    """What to run: argv (no shell), and the job's cwd, env, timeout and user."""

    argv: Sequence[str]
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a run did: its exit code (None when it never started or was killed for its
    timeout), how long it took, the tails of its output, and why it failed, if it did."""

    exit_code: int | None
    duration_s: float
    stdout: str
    stderr: str
    error: str | None = None  # None: exit 0

    def detail(self) -> str:
        """What history shows of the run: its end, then each non-empty output tail."""
        ended = f"exit {self.exit_code}" if self.exit_code is not None else None
        if self.exit_code is None or self.exit_code < 0:
            ended = self.error  # timed out, never started, or killed by a signal
        parts = [f"{ended} in {self.duration_s:.3f}s"]
        for name, tail in (("stdout", self.stdout), ("stderr", self.stderr)):
            if tail:
                parts.append(f"{name}:\n{tail.rstrip(chr(10))}")
        return "\n".join(parts)


def minimal_environment(user: pwd.struct_passwd, worker_env: Mapping[str, str]) -> dict[str, str]:
    """PATH and LANG as the worker has them (or the usual defaults), HOME of the user the
    command runs as; nothing else of the worker's environment (its Redis password, say)."""
    return {
        "PATH": worker_env.get("PATH") or DEFAULT_PATH,
        "LANG": worker_env.get("LANG") or "C.UTF-8",
        "HOME": user.pw_dir,
    }


def target_user(name: str | None) -> pwd.struct_passwd:
    """The account the command runs as; raises ShellRefused when that is not possible."""
    current = pwd.getpwuid(os.geteuid())
    if name is None or name == current.pw_name:
        return current
    try:
        wanted = pwd.getpwnam(name)
    except KeyError:
        raise ShellRefused(f"user {name!r}: no such user on this worker") from None
    if os.geteuid() != 0:
        raise ShellRefused(
            f"user {name!r}: the worker runs as {current.pw_name!r}, not root, so it cannot "
            "run a command as another user"
        )
    return wanted


def tail_text(data: bytes) -> str:
    """The last TAIL_BYTES of `data` as text: UTF-8 with replacement, not starting inside a
    character that the cut split."""
    cut = data[-TAIL_BYTES:]
    if len(data) > TAIL_BYTES:
        skip = 0
        while skip < min(3, len(cut)) and 0x80 <= cut[skip] <= 0xBF:
            skip += 1
        cut = cut[skip:]
    return cut.decode("utf-8", errors="replace")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def exit_error(code: int, stderr: str) -> str:
    """ "exit 3: <last stderr line>", or "killed by SIGSEGV" for a signal."""
    if code < 0:
        try:
            what = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            what = f"killed by signal {-code}"
    else:
        what = f"exit {code}"
    line = last_line(stderr)
    return f"{what}: {line}" if line else what


class _Tail:
    """Reads a pipe to its end on a thread of its own, keeping only its last bytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._data = bytearray()
        self._thread = threading.Thread(target=self._read, name="shell-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._fd, _READ_CHUNK):
                self._data += chunk
                if len(self._data) > 2 * TAIL_BYTES:
                    # A few bytes more than the tail, so tail_text sees where a cut fell.
                    del self._data[: -(TAIL_BYTES + 4)]
        except OSError:
            pass  # the pipe went away: what we have is the tail

    def text(self, wait_s: float) -> str:
        self._thread.join(wait_s)
        return tail_text(bytes(self._data))


def run_command(
    command: Command,
    *,
    worker_env: Mapping[str, str] | None = None,
    kill_grace_s: float = KILL_GRACE_S,
) -> CommandResult:
    """Run `command` to its end or its timeout; raises ShellRefused before starting anything
    when its user cannot be honoured."""
    account = target_user(command.user)
    env = minimal_environment(account, os.environ if worker_env is None else worker_env)
    env.update(command.env)
    as_other = account.pw_uid != os.geteuid()
    started = time.monotonic()
    try:
        # A list from the worker's own config, never a shell.
        process = subprocess.Popen(
            list(command.argv),
            cwd=command.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # A process group of its own: the timeout kills the command and all it started.
            start_new_session=True,
            user=account.pw_uid if as_other else None,
            group=account.pw_gid if as_other else None,
            extra_groups=os.getgrouplist(account.pw_name, account.pw_gid) if as_other else None,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" in {command.cwd}" if command.cwd and not os.path.isdir(command.cwd) else ""
        error = f"could not start {command.argv[0]}{where}: {reason}"
        return CommandResult(None, time.monotonic() - started, "", "", error)
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = _Tail(process.stdout.fileno()), _Tail(process.stderr.fileno())
    timed_out = None
    try:
        code: int | None = process.wait(command.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = _kill_group(process, kill_grace_s)
        code = None
    duration = time.monotonic() - started
    stdout, stderr = out.text(DRAIN_WAIT_S), err.text(DRAIN_WAIT_S)
    process.stdout.close()
    process.stderr.close()
    failure = None
    if timed_out is not None:
        failure = f"timed out after {command.timeout_s or 0.0:g}s: {timed_out}"
    elif code:
        failure = exit_error(code, stderr)
    return CommandResult(code, duration, stdout, stderr, failure)


def _kill_group(process: subprocess.Popen[bytes], grace_s: float) -> str:
    """SIGTERM to the command's process group, SIGKILL to whatever of it is left `grace_s`
    later; how it ended, in words."""
    group = process.pid  # start_new_session: the group's id is the command's pid
    if not _signal_group(group, signal.SIGTERM):
        process.wait()
        return "process group sent SIGTERM"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        # The group is gone once its leader is reaped and no member is left.
        if process.poll() is not None and not _signal_group(group, 0):
            return "process group sent SIGTERM"
        time.sleep(0.05)  # a poll interval, bounded by the deadline above
    _signal_group(group, signal.SIGKILL)
    process.wait()  # SIGKILL cannot be caught or ignored: this returns at once
    return f"process group sent SIGTERM, then SIGKILL after {grace_s:g}s"


def _signal_group(group: int, signum: int) -> bool:
    """Send `signum` to process group `group` (0: only ask whether it exists); whether any
    process was there to get it."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True
