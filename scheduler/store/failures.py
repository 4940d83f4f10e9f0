"""The one place where redis-py's errors become this package's: unavailable or corrupt.

Unavailable (a connection refused or cut, a timeout, a server still loading, a replica that
may not take writes) is transient: the caller may retry within the lease rules. Corrupt (a
wrong type at a key, a value a script cannot read) is deterministic: the same call fails the
same way, so it is never retried blindly; the caller sets the job or key aside instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from scheduler.errors import StateCorrupt, StoreUnavailable

# Error replies that describe the server's condition, not our data: asking again may work.
TRANSIENT_REPLIES = (
    "LOADING", "BUSY", "READONLY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN",
    "OOM", "MISCONF", "NOSCRIPT", "UNBLOCKED",
)  # fmt: skip


# redis-py turns some of those replies into classes of their own and drops the code from the
# message ("OOM command not allowed ..." reads "command not allowed ..."), so look at both.
TRANSIENT_CLASSES: tuple[type[redis.RedisError], ...] = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.NoScriptError,
)


def is_transient_reply(error: redis.ResponseError) -> bool:
    return isinstance(error, TRANSIENT_CLASSES) or str(error).lstrip("-").startswith(
        TRANSIENT_REPLIES
    )


@contextmanager
def redis_errors(doing: str) -> Iterator[None]:
    """Run a Redis call, raising StoreUnavailable or StateCorrupt (`doing` names the call)."""
    try:
        yield
    except redis.ResponseError as exc:
        if is_transient_reply(exc):
            raise StoreUnavailable(f"{doing}: {exc}") from exc
        raise StateCorrupt(f"{doing}: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreUnavailable(f"{doing}: {exc}") from exc
