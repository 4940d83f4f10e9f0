"""Built-in example tasks, registered under their dotted names so configs can name them.

Each runs once per fired (job, slot), even when its message is repeated (`RunOnceTask`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from celery import shared_task

from jobs.runonce import RunOnceTask

F = TypeVar("F", bound=Callable[..., Any])


def task(name: str) -> Callable[[F], F]:
    """`shared_task` with a fixed name and the run-once base, typed for mypy (Celery ships no
    type hints). The base is explicit, so it holds on any app these tasks are bound to."""
    return cast(Callable[[F], F], shared_task(name=name, base=RunOnceTask))


@task("jobs.examples.hello")
def hello(name: str) -> str:
    return f"Hello, {name}!"


@task("jobs.examples.ping")
def ping() -> str:
    return "pong"


@task("jobs.examples.count_errors")
def count_errors(path: str) -> int:
    """How many lines of the log file at `path` contain ``ERROR``."""
    log_file = Path(path)
    if not log_file.is_file():
        raise FileNotFoundError(f"count_errors: no log file at {path}")
    # Logs are not always clean UTF-8; a bad byte must not fail the count.
    with log_file.open(encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if "ERROR" in line)


@task("jobs.examples.add")
def add(x: float, y: float) -> float:
    """x + y: the first step of the chain example ``(4 + 4) * 8``."""
    return x + y


@task("jobs.examples.mul")
def mul(x: float, y: float) -> float:
    """x * y: a chain's next step gets the previous result as `x`."""
    return x * y
