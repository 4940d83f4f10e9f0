"""Pure trigger math: the slots of a schedule, as whole-second UTC instants.

No I/O, no clock, no sleeping: ``next_slot(after)`` is a function of its argument.
"""

from scheduler.triggers.at import AtTrigger
from scheduler.triggers.base import CountableTrigger, Trigger, count_slots, iter_slots
from scheduler.triggers.calendar import CalendarTrigger, calendar_trigger
from scheduler.triggers.cron import CronExpression, CronTrigger, compile_cron
from scheduler.triggers.every import EveryTrigger

__all__ = [
    "AtTrigger",
    "CalendarTrigger",
    "CountableTrigger",
    "CronExpression",
    "CronTrigger",
    "EveryTrigger",
    "Trigger",
    "calendar_trigger",
    "compile_cron",
    "count_slots",
    "iter_slots",
]
