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
    if differs.near_offset_change:
        why = "this project follows cronie across the daylight-saving change"
    elif _star_step_day(cron):
        why = (
            "croniter ORs a */n day field with the other day field; cronie ANDs them when "
            "either starts with *"
        )
    else:
        why = "croniter reads this expression differently from cronie"
    return (
        f"croniter (Airflow, rq-scheduler) fires {shown_slot(differs.theirs, zone)}, this cron "
        f"fires {shown_slot(differs.ours, zone)}: {why}"
    )


def _star_step_day(cron: str) -> bool:
    """Both day fields restrict days and one is written ``*/n`` (or ``*`` with a step)."""
    fields = cron.split()
    if len(fields) != 5:
        return False
    dom, dow = fields[2], fields[4]
    return "*" not in (dom, dow) and (dom.startswith("*") or dow.startswith("*"))
