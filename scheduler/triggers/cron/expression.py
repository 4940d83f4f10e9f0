"""A whole cron expression: macros, 5 or 6 fields, ``H``, and the shared compile cache.

Five fields are ``minute hour day-of-month month day-of-week``; six fields put seconds FIRST
(unlike croniter's default). ``H`` is resolved from the job name before anything else, so the
compiled expression depends only on the resolved text, and identical texts share one object.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from scheduler.errors import InvalidSchedule
from scheduler.triggers.cron import fields as f
from scheduler.triggers.cron.days import CALENDAR_CYCLE_DAYS, DayRule
from scheduler.triggers.cron.hashed import resolve_hashes
from scheduler.triggers.cron.times import TimesOfDay

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SPECS_5 = (f.MINUTE, f.HOUR, f.DAY_OF_MONTH, f.MONTH, f.DAY_OF_WEEK)
_SPECS_6 = (f.SECOND, *_SPECS_5)
_MONTH_WORDS = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")  # fmt: skip
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LAST_ORDINAL = date.max.toordinal()
_NEVER_FIRES_FROM = date(2000, 1, 1).toordinal()  # any start works: the calendar cycles


@dataclass(frozen=True, slots=True, weakref_slot=True)
class CronExpression:
    """A compiled cron expression; compares equal by its (H-resolved) text.

    Times are local wall-clock times; ``wildcard`` (minute or hour text starts with ``*``)
    decides how the trigger treats DST gaps and overlaps.
    """

    text: str
    times: TimesOfDay = field(compare=False, repr=False)
    days: DayRule = field(compare=False, repr=False)
    wildcard: bool = field(compare=False)

    def first_match(self, low_wall_s: int, high_wall_s: int | None) -> int | None:
        """The first matching wall time in ``[low_wall_s, high_wall_s)``, or None.

        Wall times are seconds since 1970-01-01 00:00 of the local clock (any zone, no offset);
        ``high_wall_s`` None means no bound.
        """
        day, second = divmod(low_wall_s, 86_400)
        last_ordinal = _LAST_ORDINAL
        if high_wall_s is not None:
            last_ordinal = min(last_ordinal, _EPOCH_ORDINAL + (high_wall_s - 1) // 86_400)
        ordinal = _EPOCH_ORDINAL + day
        while ordinal <= last_ordinal:
            found = self.days.first_day(ordinal, last_ordinal)
            if found is None:
                return None
            time_s = self.times.first_at_or_after(second if found == ordinal else 0)
            if time_s is not None:
                wall_s = (found - _EPOCH_ORDINAL) * 86_400 + time_s
                return wall_s if high_wall_s is None or wall_s < high_wall_s else None
            ordinal, second = found + 1, 0  # the rest of that day has no time left
        return None

    def last_match(self, low_wall_s: int, high_wall_s: int) -> int | None:
        """The last matching wall time in ``[low_wall_s, high_wall_s)``, or None."""
        if high_wall_s <= low_wall_s:
            return None
        day, second = divmod(high_wall_s - 1, 86_400)
        first_ordinal = _EPOCH_ORDINAL + low_wall_s // 86_400
        ordinal = _EPOCH_ORDINAL + day
        while ordinal >= first_ordinal:
            found = self.days.last_day(first_ordinal, ordinal)
            if found is None:
                return None
            time_s = self.times.last_at_or_before(second if found == ordinal else 86_399)
            if time_s is not None:
                wall_s = (found - _EPOCH_ORDINAL) * 86_400 + time_s
                return wall_s if wall_s >= low_wall_s else None
            ordinal, second = found - 1, 86_399  # the start of that day has no time left
        return None

    def count_matches(self, low_wall_s: int, high_wall_s: int) -> int:
        """How many matching wall times lie in ``[low_wall_s, high_wall_s)``.

        Every matching day has the same times, so this is (matching days) x (times per day),
        less the times before ``low_wall_s`` on its day and plus those before ``high_wall_s``
        on its day: O(months in the range) for the days, O(log) for the times.
        """
        if high_wall_s <= low_wall_s:
            return 0
        low_day, low_second = divmod(low_wall_s, 86_400)
        high_day, high_second = divmod(high_wall_s, 86_400)
        low_ordinal, high_ordinal = _EPOCH_ORDINAL + low_day, _EPOCH_ORDINAL + high_day
        days, times = self.days, self.times
        count = days.count_days(low_ordinal, high_ordinal - 1) * times.per_day
        if low_second and days.count_days(low_ordinal, low_ordinal):
            count -= times.count_before(low_second)
        if high_second and days.count_days(high_ordinal, high_ordinal):
            count += times.count_before(high_second)
        return count


# Six fields listing every value of their range fit in about 600 characters. The bound keeps
# each error line (which quotes the item) readable and every number far below the 4,300 digits
# past which int() refuses to read one.
MAX_CRON_LENGTH = 1000


def split_fields(text: str) -> list[str]:
    """The fields of ``text`` (macros expanded); 5 or 6 of them, else an error."""
    if len(text) > MAX_CRON_LENGTH:
        raise InvalidSchedule(
            f"cron text is {len(text)} characters long; at most {MAX_CRON_LENGTH} are read"
        )
    words = text.split()
    if words and words[0].startswith("@"):
        macro = MACROS.get(words[0].lower())
        if macro is None:
            raise InvalidSchedule(f'unknown macro "{words[0]}"')
        if len(words) > 1:
            raise InvalidSchedule(f'macro "{words[0]}" cannot be followed by fields')
        words = macro.split()
    if len(words) not in (5, 6):
        raise InvalidSchedule(f"expected 5 or 6 fields, got {len(words)}")
    return words


def resolve_text(text: str, job_name: str) -> str:
    """``text`` normalised (single spaces) with every ``H`` replaced for ``job_name``."""
    words = text.split()
    if words and words[0].startswith("@"):
        split_fields(text)  # validates the macro
        return words[0]
    fields = split_fields(text)
    specs = _SPECS_5 if len(fields) == 5 else _SPECS_6
    return " ".join(
        resolve_hashes(t, spec, job_name) for t, spec in zip(fields, specs, strict=True)
    )


def parse_cron(text: str) -> CronExpression:
    """Compile cron text whose ``H`` items are already resolved (``resolve_text``). The
    expression is not cached here (``compile_cron`` shares it); its fields are."""
    fields = split_fields(text)
    second_text = fields[0] if len(fields) == 6 else "0"
    minute_text, hour_text, dom_text, month_text, dow_text = fields[-5:]
    times = TimesOfDay(
        hours=_values(hour_text, f.HOUR),
        minutes=_values(minute_text, f.MINUTE),
        seconds=_values(second_text, f.SECOND),
    )
    days = _day_rule(month_text, dom_text, dow_text)
    wildcard = minute_text.startswith("*") or hour_text.startswith("*")
    return CronExpression(text=text, times=times, days=days, wildcard=wildcard)


# The same field texts ("*", "0", "1-5") recur across thousands of distinct expressions: each
# is parsed once and its (immutable) result shared, which keeps 100,000 distinct expressions
# from holding 100,000 copies of the same sets. Errors are raised anew, never cached.
@lru_cache(maxsize=4096)
def _values(text: str, spec: f.FieldSpec) -> tuple[int, ...]:
    return tuple(sorted(f.parse_field(text, spec)))


@lru_cache(maxsize=4096)
def _day_rule(month_text: str, dom_text: str, dow_text: str) -> DayRule:
    days = DayRule(
        months=_values(month_text, f.MONTH),
        day_of_month=f.parse_day_of_month(dom_text),
        day_of_week=f.parse_day_of_week(dow_text),
        either=not dom_text.startswith("*") and not dow_text.startswith("*"),
    )
    _refuse_if_never_fires(days)
    return days


def _refuse_if_never_fires(days: DayRule) -> None:
    start = _NEVER_FIRES_FROM
    if days.first_day(start, start + CALENDAR_CYCLE_DAYS - 1) is not None:
        return
    dom, dow = days.day_of_month, days.day_of_week
    named = sorted(dom.days | dom.nearest_weekdays)
    special = dom.last_day or dom.last_weekday
    if days.either or special or not named or dow.weekdays != frozenset(range(7)):
        raise InvalidSchedule("expression never fires")
    # Only the day-of-month numbers can be at fault: they exceed every chosen month.
    words = [_MONTH_WORDS[m - 1] for m in days.months]
    months = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    numbers = ",".join(str(d) for d in named)
    raise InvalidSchedule(f"never fires (day-of-month {numbers} never occurs in {months})")


# Shared while some job uses it, forgotten when none does: no unbounded growth as jobs come
# and go, and 100,000 jobs with a handful of distinct expressions hold a handful of objects.
_compiled: weakref.WeakValueDictionary[str, CronExpression] = weakref.WeakValueDictionary()


def compile_cron(text: str, job_name: str) -> CronExpression:
    """The compiled expression for ``text`` as job ``job_name`` sees it (``H`` resolved).

    Jobs whose resolved texts are identical share one object.
    """
    resolved = resolve_text(text, job_name)
    expression = _compiled.get(resolved)
    if expression is None:
        expression = parse_cron(resolved)
        _compiled[resolved] = expression
    return expression
