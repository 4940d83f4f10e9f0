"""Real-process fixtures come from the integration layer: children that always die at teardown
(with their log tails on a failed test's report), the cluster around a private Redis, RabbitMQ."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures and a hook, re-used by name)
    children,
    cluster,
    pytest_runtest_makereport,
    rabbitmq_url,
)
