"""The dead man's switch's open alerts as `jobs list` and `status` read them (the leader's
`scheduler.alerting.AlertWatch` writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from scheduler.alerts import parse_alert
from scheduler.store.keys import Keys
from scheduler.store.state import Reading, StateStore, Unreadable, shown, text


def read_alerts(
    source: StateStore | redis.Redis, keys: Keys, jobs: Sequence[str] | None = None
) -> Reading[dict[str, dict[str, Any]]]:
    """Open alerts by job (of `jobs`, or all): {"since": epoch s, "reason": text}. A garbled
    record still names its job (reason "unreadable", since None) and is reported; a wrong type
    at the key is reported; Redis unreachable raises StoreUnavailable."""
    store = source if isinstance(source, StateStore) else StateStore(source, keys)
    raw, unreadable = store._hash(keys.alerts, "reading open alerts", jobs)
    result: dict[str, dict[str, Any]] = {}
    for job, value in raw.items():
        name = text(job)
        alert = parse_alert(value)
        if alert is None:
            unreadable.append(Unreadable(keys.alerts, f"{shown(value)}, not an alert", name))
            result[name] = {"since": None, "reason": "unreadable"}
            continue
        result[name] = {"since": alert.since_s, "reason": alert.reason}
    return Reading(result, unreadable)
