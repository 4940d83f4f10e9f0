from datetime import timedelta

import pytest

from scheduler.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30),
        (1.5, 1.5),
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1500ms", 1.5),
        ("1.5s", 1.5),
        ("45", 45),
        (" 1H 30M ", 5400),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "invalid duration '5 minutes'"),
        ("m5", "invalid duration 'm5'"),
        ("", "empty duration"),
        (-1, "duration must not be negative, got -1"),
        (True, "expected a duration"),
        ([1], "expected a duration"),
    ],
)
def test_bad_durations_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5400, "1h30m"), (1.5, "1500ms"), (0, "0s"), (86461, "1d1m1s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
