"""The time-of-day part of a cron expression: hours x minutes x seconds."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimesOfDay:
    """The times of day a cron expression fires at, as three sorted tuples.

    Kept as three short tuples rather than one list of every time: ``* * * * * *`` would
    otherwise need 86,400 entries per compiled expression.
    """

    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]

    def first_at_or_after(self, second_of_day: int) -> int | None:
        """The first firing time (seconds after midnight) >= ``second_of_day``, or None."""
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h = bisect_left(hours, hour)
        if h == len(hours):
            return None
        if hours[h] == hour:
            m = bisect_left(minutes, minute)
            if m < len(minutes):
                if minutes[m] == minute:
                    s = bisect_left(seconds, second)
                    if s < len(seconds):
                        return hour * 3600 + minute * 60 + seconds[s]
                    m += 1  # this minute is spent: the next one, from its first second
                if m < len(minutes):
                    return hour * 3600 + minutes[m] * 60 + seconds[0]
            h += 1  # this hour is spent: the next one, from its first minute
            if h == len(hours):
                return None
        return hours[h] * 3600 + minutes[0] * 60 + seconds[0]

    def last_at_or_before(self, second_of_day: int) -> int | None:
        """The last firing time (seconds after midnight) <= ``second_of_day``, or None."""
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h = bisect_right(hours, hour) - 1
        if h < 0:
            return None
        if hours[h] == hour:
            m = bisect_right(minutes, minute) - 1
            if m >= 0:
                if minutes[m] == minute:
                    s = bisect_right(seconds, second) - 1
                    if s >= 0:
                        return hour * 3600 + minute * 60 + seconds[s]
                    m -= 1  # nothing left in this minute: the one before, from its last second
                if m >= 0:
                    return hour * 3600 + minutes[m] * 60 + seconds[-1]
            h -= 1  # nothing left in this hour: the one before, from its last minute
            if h < 0:
                return None
        return hours[h] * 3600 + minutes[-1] * 60 + seconds[-1]

    @property
    def per_day(self) -> int:
        """How many firing times one matching day has."""
        return len(self.hours) * len(self.minutes) * len(self.seconds)

    def count_before(self, second_of_day: int) -> int:
        """How many firing times are < ``second_of_day`` (0 to 86,400), by bisection."""
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        h = bisect_left(hours, hour)
        count = h * len(minutes) * len(seconds)
        if h < len(hours) and hours[h] == hour:
            m = bisect_left(minutes, minute)
            count += m * len(seconds)
            if m < len(minutes) and minutes[m] == minute:
                count += bisect_left(seconds, second)
        return count
