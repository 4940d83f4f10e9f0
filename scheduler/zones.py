"""Which time zone rules this process reads: the pinned `tzdata` package, set by entry points."""

from __future__ import annotations

import zoneinfo


def use_pinned_tzdata() -> None:
    """Read time zones from the `tzdata` package only, never the host's /usr/share/zoneinfo.

    Every node must compute the same slots, and hosts update their zone files at different
    times, so all of them read the rules this project pins. Each entry point calls this first
    (the CLI, our worker app, tools, the tests), not an import of `scheduler`: a program that
    merely imports a module of ours keeps its own search path. Call it before the first zone
    other than UTC is loaded: `zoneinfo` caches each zone it has read, and this does not clear
    the cache (that would give a later ``ZoneInfo(key)`` a new identity, and aware datetimes of
    the same zone would then subtract across zones instead of within one).
    """
    zoneinfo.reset_tzpath(to=())
