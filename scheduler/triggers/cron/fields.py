"""One cron field at a time: ranges, names, lists, steps and the day-field extensions.

Cronie/Vixie semantics: ``*``, ``a``, ``a-b``, ``a-b/n``, ``*/n`` and comma lists; names
(``JAN``, ``mon``) in any case wherever a number may stand; day-of-week 0 and 7 are both Sunday.
Stricter than cronie in two places: ``a/n`` (a step without a range) and reversed ranges are
errors rather than guesses.

Extensions beyond cronie (as in Quartz): ``L`` (last day of the month), ``LW`` (the last
weekday, Monday-Friday, of the month) and ``nW`` (the weekday nearest day n, never leaving the
month) in day-of-month; ``nL`` (the last weekday n of the month)
and ``n#k`` (the k-th weekday n of the month) in day-of-week.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.errors import InvalidSchedule

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
SUNDAY_ALIAS = 7  # day-of-week 7 is another spelling of 0
MAX_STEP = 999


@dataclass(frozen=True, eq=False)
class FieldSpec:
    """What one position of a cron expression accepts."""

    name: str  # as it appears in messages: "minute", "day-of-week"
    low: int
    high: int
    names: dict[str, int]  # upper-case name -> value; empty for numeric-only fields
    name_kind: str = ""  # "month" in `unknown month name "FOO"`
    # H picks from this range when set; narrower than [low, high] for the day fields.
    hash_bounds: tuple[int, int] | None = None

    @property
    def hash_range(self) -> tuple[int, int]:
        """The inclusive range that ``H`` and ``H/n`` draw from."""
        return self.hash_bounds or (self.low, self.high)


SECOND = FieldSpec("second", 0, 59, {})
MINUTE = FieldSpec("minute", 0, 59, {})
HOUR = FieldSpec("hour", 0, 23, {})
# H stays within 1-28 so that a hashed day exists in every month.
DAY_OF_MONTH = FieldSpec("day-of-month", 1, 31, {}, hash_bounds=(1, 28))
MONTH = FieldSpec("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}, "month")
# H stays within 0-6 so that Sunday is not twice as likely as other days.
DAY_OF_WEEK = FieldSpec(
    "day-of-week", 0, 7, {n: i for i, n in enumerate(_WEEKDAY_NAMES)}, "day-of-week", (0, 6)
)


@dataclass(frozen=True, slots=True)
class DayOfMonth:
    """A parsed day-of-month field."""

    days: frozenset[int]  # plain days 1-31
    last_day: bool = False  # "L"
    last_weekday: bool = False  # "LW": the last Monday-Friday of the month
    nearest_weekdays: frozenset[int] = frozenset()  # "15W" -> 15


@dataclass(frozen=True, slots=True)
class DayOfWeek:
    """A parsed day-of-week field; weekdays are 0 (Sunday) to 6 (Saturday)."""

    weekdays: frozenset[int]
    last_weekdays: frozenset[int] = frozenset()  # "5L" -> 5
    nth_weekdays: frozenset[tuple[int, int]] = frozenset()  # "MON#2" -> (1, 2)


def parse_value(token: str, spec: FieldSpec, item: str) -> int:
    """One number or name of ``spec``, checked against its range."""
    if token.isascii() and token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise InvalidSchedule(f"{spec.name} {value} is out of range {spec.low}-{spec.high}")
        return value
    if spec.names and token.isascii() and token.isalpha():
        value_of_name = spec.names.get(token.upper())
        if value_of_name is None:
            raise InvalidSchedule(f'unknown {spec.name_kind} name "{token}"')
        return value_of_name
    raise InvalidSchedule(f'{spec.name} field: cannot read "{item}"')


def parse_step(token: str, spec: FieldSpec, item: str) -> int:
    """The ``n`` of ``/n``: a whole number of at least 1."""
    if not (token.isascii() and token.isdigit()) or int(token) < 1:
        raise InvalidSchedule(f'{spec.name} field: step must be a whole number >= 1 in "{item}"')
    return int(token)


def parse_range(token: str, spec: FieldSpec, item: str) -> tuple[int, int]:
    """``a-b`` (``a <= b``) as its inclusive bounds."""
    first, _, last = token.partition("-")
    low, high = parse_value(first, spec, item), parse_value(last, spec, item)
    if low > high:
        raise InvalidSchedule(
            f'{spec.name} field: reversed range "{token}"; '
            f'write "{first}-{spec.high},{spec.low}-{last}"'
        )
    return low, high


def _plain_item(item: str, spec: FieldSpec) -> range:
    """``*``, ``*/n``, ``a``, ``a-b`` or ``a-b/n`` as the values it stands for."""
    base, slash, step_text = item.partition("/")
    step = parse_step(step_text, spec, item) if slash else 1
    # "*/n" asks for every n-th value of the whole range, so a longer n is a typo (as for H/n).
    # After an explicit "a-b" cronie reads a long step as "a only" (a pinned test): that stays,
    # up to MAX_STEP, past which no one meant a number.
    if base == "*" and step > spec.high - spec.low + 1:
        raise InvalidSchedule(
            f'{spec.name} field: step {step} in "{item}" is longer than the range '
            f"{spec.low}-{spec.high}"
        )
    if step > MAX_STEP:
        raise InvalidSchedule(f'{spec.name} field: step {step} in "{item}" is over {MAX_STEP}')
    if base == "*":
        return range(spec.low, spec.high + 1, step)
    if "-" in base:
        low, high = parse_range(base, spec, item)
        return range(low, high + 1, step)
    value = parse_value(base, spec, item)
    if slash:
        raise InvalidSchedule(
            f'{spec.name} field: step without a range ("{item}"); '
            f'write "{base}-{spec.high}/{step}" or "*/{step}"'
        )
    return range(value, value + 1)


def split_items(text: str, spec: FieldSpec) -> list[str]:
    """The comma-separated items of one field; an empty item is an error."""
    items = text.split(",")
    if "" in items:
        raise InvalidSchedule(f'{spec.name} field: empty list item in "{text}"')
    return items


def parse_field(text: str, spec: FieldSpec) -> frozenset[int]:
    """A field without extensions (second, minute, hour, month) as its set of values."""
    values: set[int] = set()
    for item in split_items(text, spec):
        values.update(_plain_item(item, spec))
    return frozenset(values)


def parse_day_of_month(text: str) -> DayOfMonth:
    """The day-of-month field, with ``L``, ``LW`` and ``nW``."""
    days: set[int] = set()
    nearest: set[int] = set()
    last_day = last_weekday = False
    for item in split_items(text, DAY_OF_MONTH):
        if item.upper() == "L":
            last_day = True
        elif item.upper() == "LW":
            last_weekday = True
        elif item[-1] in "Ww" and len(item) > 1:
            nearest.add(parse_value(item[:-1], DAY_OF_MONTH, item))
        else:
            days.update(_plain_item(item, DAY_OF_MONTH))
    return DayOfMonth(frozenset(days), last_day, last_weekday, frozenset(nearest))


def _weekday(token: str, item: str) -> int:
    return parse_value(token, DAY_OF_WEEK, item) % SUNDAY_ALIAS


def parse_day_of_week(text: str) -> DayOfWeek:
    """The day-of-week field, with ``nL`` and ``n#k``; 7 becomes 0."""
    weekdays: set[int] = set()
    last: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in split_items(text, DAY_OF_WEEK):
        if "#" in item:
            weekday_text, _, week_text = item.partition("#")
            if week_text not in {"1", "2", "3", "4", "5"}:
                raise InvalidSchedule(f'day-of-week field: the week in "{item}" must be 1-5')
            nth.add((_weekday(weekday_text, item), int(week_text)))
        elif item[-1] in "Ll":
            if len(item) == 1:
                raise InvalidSchedule(
                    'day-of-week field: "L" needs a weekday before it, as in "5L"'
                )
            last.add(_weekday(item[:-1], item))
        else:
            weekdays.update(value % SUNDAY_ALIAS for value in _plain_item(item, DAY_OF_WEEK))
    return DayOfWeek(frozenset(weekdays), frozenset(last), frozenset(nth))
