"""The time-of-day part of a cron expression: hours x minutes x seconds."""

from __future__ import annotations

from bisect import bisect_left
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
