"""scheduler: a highly available cron for Celery."""

from __future__ import annotations

import zoneinfo

__version__ = "0.1.0"

# Every node must compute the same slots, so every node reads the same time zone rules: the
# pinned `tzdata` package, never whatever /usr/share/zoneinfo a host happens to have.
zoneinfo.reset_tzpath(to=())
