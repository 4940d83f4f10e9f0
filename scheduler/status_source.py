"""What `scheduler status` and the status page show, read from Redis in one place: the lease
holder, every node's record, the outbox, quarantined jobs, alerts and config drift. The CLI
turns a Redis failure into its exit code; the page into a line that says so."""

from __future__ import annotations

from typing import Any

from scheduler import __version__
from scheduler.config import Config
from scheduler.connections import redact_url, same_redis, tzdata_version
from scheduler.lease import read_holder
from scheduler.store.alerts import read_alerts
from scheduler.store.configs import read_published
from scheduler.store.state import StateStore
from scheduler.views import drift_hashes, status_record


def read_status_record(cfg: Config, store: StateStore) -> dict[str, Any]:
    """Everything `status` and the status page show, read from Redis; raises SchedulerError
    when Redis fails."""
    holder = read_holder(store.client, store.keys)
    settings = cfg.scheduler
    outbox = store.read_outbox_size()
    nodes = store.read_nodes()
    now_s = store.server_time()
    state_lost = store.read_state_lost()
    quarantined = store.read_quarantined()
    alerts = read_alerts(store, store.keys)
    published = {
        found: read_published(store.client, store.keys, found)
        for found in drift_hashes(holder, nodes.value)
    }
    pending = outbox.value
    return status_record(
        holder,
        nodes.value,
        now_s,
        {
            "namespace": settings.namespace,
            "config_hash": cfg.hash,
            "tzdata": tzdata_version(),
            "version": __version__,
            "broker": redact_url(settings.effective_broker_url),
            "atomic_enqueue": same_redis(settings.redis_url, settings.effective_broker_url),
            "outbox": {
                "pending": pending,
                "max": settings.outbox_max,
                "full": pending is not None and pending >= settings.outbox_max,
            },
            "state_lost": state_lost.value,
            "quarantined": quarantined.value,
            "alerts": alerts.value,
            "unreadable": [
                *outbox.unreadable, *nodes.unreadable, *state_lost.unreadable,
                *quarantined.unreadable, *alerts.unreadable,
                *(p for pub in published.values() for p in pub.unreadable),
            ],
        },
        published,
    )  # fmt: skip
