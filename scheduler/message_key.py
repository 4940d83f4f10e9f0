"""The message key: a secret file shared by scheduler and worker hosts (signing.py uses it).

Kept apart from signing so that `scheduler validate` can check the file without importing
kombu.
"""

from __future__ import annotations

from scheduler.errors import ConfigError
from scheduler.files import SECRET_MAX_BYTES, FileProblem, read_bounded

# HMAC-SHA256 keys shorter than its output weaken it; 32 random bytes is what `openssl rand 32`
# or `head -c 32 /dev/urandom` gives.
MIN_KEY_BYTES = 32
SETTING = "scheduler.message_key_file"


def load_key(path: str | None, source: str = "") -> bytes | None:
    """The key in the file at `path`, or None if no file is set; a ConfigError (one line) if
    it is missing, not a regular file, empty or shorter than MIN_KEY_BYTES.

    A final line ending is not part of the key (``echo`` writes one; both sides strip it).
    """
    if not path:
        return None
    where = f"{source}: {SETTING}" if source else SETTING
    try:
        data = read_bounded(path, SECRET_MAX_BYTES, "message key file")
    except FileProblem as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
    key = data.rstrip(b"\r\n")
    if not key:
        raise ConfigError([f"{where}: {path} is empty"])
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            [f"{where}: {path} holds {len(key)} bytes; a message key needs {MIN_KEY_BYTES} or more"]
        )
    return key
