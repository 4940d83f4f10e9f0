"""How an import says where two schedules part, as one comment line."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler.importers.compare import NextSlot, first_difference
from scheduler.importers.sources import croniter_slots


def shown_slot(slot: datetime | None, zone: ZoneInfo) -> str:
    return "nothing" if slot is None else slot.astimezone(zone).isoformat()


def croniter_note(cron: str, mine: NextSlot, zone: ZoneInfo, since: datetime) -> str | None:
    """Where croniter (the cron of Airflow and rq-scheduler) fires ``cron`` differently from
    this project's cronie rules, or None when they agree."""
    try:
        differs = first_difference(mine, croniter_slots(cron, zone), since, zone)
    except (ValueError, KeyError, RuntimeError) as exc:  # croniter refuses what we accept
        return f"croniter (Airflow, rq-scheduler) cannot read {cron!r}: {exc}"
    if differs is None:
        return None
    why = (
        "this project follows cronie across the daylight-saving change"
        if differs.near_offset_change
        else "croniter reads this expression differently from cronie"
    )
    return (
        f"croniter (Airflow, rq-scheduler) fires {shown_slot(differs.theirs, zone)}, this cron "
        f"fires {shown_slot(differs.ours, zone)}: {why}"
    )
