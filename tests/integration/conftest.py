"""Fixtures for integration tests: child processes that always die at teardown."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Children

_children_key = pytest.StashKey[Children]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    """Attach the tail of every child's log to a failed test's report."""
    report = yield
    children = item.stash.get(_children_key, None)
    if report.failed and children is not None and children.started:
        report.sections.append(("logs of child processes", children.log_tails()))
    return report


@pytest.fixture
def children(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Children]:
    """Start processes through this; all of them are SIGKILLed at teardown, even on failure."""
    group = Children(log_dir=tmp_path / "logs")
    request.node.stash[_children_key] = group
    try:
        yield group
    finally:
        group.kill_all()
