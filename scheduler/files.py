"""The one way this package reads a file a user names: regular files only, bounded in size,
never blocking, every failure one line naming the file.

A FIFO or a device as a config file, an include or a secret would block a read forever
(`/dev/zero` until memory runs out); a symlink loop or an overlong path raises OSErrors that
would otherwise surface as tracebacks. `read_bounded` refuses each with `FileProblem`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from scheduler.errors import SchedulerError

# Larger than any config this project has met (100,000 jobs are about 8 MB).
CONFIG_MAX_BYTES = 64 * 1024 * 1024
# Passwords and keys are short.
SECRET_MAX_BYTES = 64 * 1024


# Non-blocking, so opening a FIFO returns at once instead of waiting for a writer.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class FileProblem(SchedulerError):
    """Raised when a file cannot be read as asked; the message is one line naming it."""


def read_bounded(path: str | os.PathLike[str], max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `max_bytes` of them.

    Opens without following the open into a FIFO's wait (O_NONBLOCK), checks what was opened
    is a regular file, and reads one byte past the cap to tell a file that is too large.
    """
    name = _shown(os.fspath(path))
    try:
        descriptor = os.open(
            os.fspath(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        )
    except OSError as exc:
        raise FileProblem(f"{name}: {_why(exc, what)}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise FileProblem(f"{name}: is a directory, not a {what}")
        if not stat.S_ISREG(mode):
            raise FileProblem(f"{name}: not a regular file (a {_kind(mode)}), not a {what}")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise FileProblem(f"{name}: {_why(exc, what)}") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise FileProblem(f"{name}: larger than {_size(max_bytes)}, too large for a {what}")
    return data


def _shown(name: str, limit: int = 120) -> str:
    """A path as an error line shows it: an overlong one is cut, so the line stays a line."""
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name)} characters)"


def _why(error: OSError, what: str) -> str:
    reasons = {
        errno.ENOENT: f"no such {what}",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: f"is a directory, not a {what}",
        errno.ELOOP: "too many levels of symbolic links",
        errno.ENAMETOOLONG: "file name too long",
        errno.ENOTDIR: "a part of the path is not a directory",
    }
    return reasons.get(error.errno or 0, error.strerror or type(error).__name__)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"


def read_text_bounded(path: Path, max_bytes: int, what: str = "file") -> str:
    """`read_bounded` decoded as UTF-8; a decoding error is a FileProblem naming the byte."""
    data = read_bounded(path, max_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            f"{_shown(os.fspath(path))}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
