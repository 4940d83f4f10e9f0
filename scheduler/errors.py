"""One error tree for the whole package: catch `SchedulerError` to catch them all."""

from __future__ import annotations


class SchedulerError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(SchedulerError):
    """Raised when a config file, or a value in it, is invalid.

    Carries every problem found, one line each, already naming file, job and field.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InvalidSchedule(SchedulerError, ValueError):
    """Raised when a schedule (cron text, interval, instant) is malformed or never fires.

    The message names only the problem (``day-of-week 8 is out of range 0-7``); the caller
    adds the file, job and field.
    """


class StoreUnavailable(SchedulerError):
    """Raised when Redis cannot be reached, times out, or is not ready to serve (loading, a
    read-only replica, out of memory): transient, so the caller may try again."""


class StateCorrupt(SchedulerError):
    """Raised when a value in Redis is not what this package wrote there (a wrong type, an
    unreadable value): deterministic, so the same call would fail again. Never retried
    blindly: the job or key is set aside and named."""

    def __init__(self, message: str, key: str | None = None, found: str | None = None) -> None:
        self.key = key
        self.found = found
        super().__init__(message)


class ClockSkew(SchedulerError):
    """Raised when this node's clock is off Redis TIME by more than
    `max_clock_offset` at a fenced step (a wall-clock step): the node steps down and fires
    nothing until its clock agrees with Redis again."""


class LeaseLost(SchedulerError):
    """Raised when a fencing-checked write finds that this node no longer holds the lease."""


class PublishFailed(SchedulerError):
    """Raised when the broker did not accept the message of a claimed slot.

    The slot stays pending in the dispatcher and is published again on the next attempt.
    """
