"""The cluster fixture comes from the integration layer; children, the log-tail hook and
RabbitMQ come from tests/conftest.py, shared by every suite."""

from __future__ import annotations

from tests.integration.conftest import cluster  # noqa: F401  (a fixture, re-used by name)
