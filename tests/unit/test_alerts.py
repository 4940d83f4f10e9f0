"""The dead man's switch's decisions, pure: a ManualClock moves, `decide` answers, and a tiny
driver keeps the open alert as the shell (scheduler/alerting.py) keeps it in Redis."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from scheduler.alerts import (
    CLEARED,
    NO_SUCCESS,
    NOT_STARTED,
    RESOLVED,
    Close,
    JobFacts,
    OpenAlert,
    Raise,
    alert_value,
    decide,
    notification,
    parse_alert,
    parse_epoch,
    parse_last_fire,
    parse_outcome,
)
from tests.clocks import ManualClock

T0 = 1_800_000_000.0
AFTER = 60.0


@dataclass
class Watch:
    """The shell's bookkeeping around `decide`, with a clock: what Redis would hold."""

    clock: ManualClock = field(default_factory=lambda: ManualClock(T0))
    alert_after_s: float | None = AFTER
    facts: JobFacts = field(default_factory=JobFacts)
    open_alert: OpenAlert | None = None
    first_seen_s: float = T0
    paused_seen_s: float | None = None
    events: list[tuple[float, str]] = field(default_factory=list)

    def check(self) -> Raise | Close | None:
        now = self.clock.time()
        if self.facts.paused:
            self.paused_seen_s = now
        change = decide(self.alert_after_s, self.facts, self.open_alert,
                        first_seen_s=self.first_seen_s, paused_seen_s=self.paused_seen_s,
                        now_s=now)  # fmt: skip
        if isinstance(change, Raise):
            self.open_alert = OpenAlert(change.since_s, change.reason)
            self.events.append((now - T0, change.reason))
        elif isinstance(change, Close):
            self.open_alert = None
            self.events.append((now - T0, change.reason))
        return change

    def run(self, seconds: int, step_s: float = 5.0) -> list[tuple[float, str]]:
        """Check every `step_s` for `seconds`; the events raised meanwhile (offset from T0)."""
        before = len(self.events)
        for _ in range(int(seconds / step_s)):
            self.clock.advance(step_s)
            self.check()
        return self.events[before:]


def test_a_job_never_seen_succeeding_gets_alert_after_of_grace_from_first_sight() -> None:
    watch = Watch()
    watch.clock.advance(AFTER - 0.001)
    assert watch.check() is None
    watch.clock.advance(0.001)
    assert watch.check() == Raise(NO_SUCCESS, T0 + AFTER, None)


@pytest.mark.parametrize(
    ("success_ago_s", "first_alert_at_s"),
    [(0, 60), (30, 30), (59, 5), (600, 5)],  # checks every 5 s; the first is at +5 s
)
def test_silence_counts_from_the_last_success_when_one_is_known(
    success_ago_s: float, first_alert_at_s: float
) -> None:
    watch = Watch(facts=JobFacts(last_success_s=T0 - success_ago_s))
    assert watch.run(300) == [(first_alert_at_s, NO_SUCCESS)]


def test_one_alert_per_episode_then_resolved_by_a_success_after_it_opened() -> None:
    watch = Watch()
    assert watch.run(300) == [(60, NO_SUCCESS)]  # nothing new while it stays open
    assert watch.open_alert == OpenAlert(T0 + 60, NO_SUCCESS)
    watch.facts = JobFacts(last_success_s=T0 + 59)  # older than the alert: not a recovery
    assert watch.run(60) == []
    watch.facts = JobFacts(last_success_s=T0 + 362)
    assert watch.run(5) == [(365, RESOLVED)]
    # A new episode counts from that success: due at +422, seen at the check of +425.
    assert watch.run(100) == [(425, NO_SUCCESS)]


@pytest.mark.parametrize(
    ("outcome_slot", "outcome", "alerts"),
    [
        (None, None, [(60, NOT_STARTED)]),  # nothing reported at all
        (-60, "succeeded", [(60, NOT_STARTED)]),  # the newest report is of an older slot
        (0, "received", [(60, NOT_STARTED)]),  # delivered, but never begun
        (0, "started", [(60, NO_SUCCESS)]),  # it began: only the missing success counts
        (0, "failed", [(60, NO_SUCCESS)]),
        (30, "received", [(60, NO_SUCCESS)]),  # a later run (a trigger) reached a worker
    ],
)
def test_an_enqueued_slot_that_never_started(
    outcome_slot: int | None, outcome: str | None, alerts: list[tuple[float, str]]
) -> None:
    slot_s = int(T0)
    reported = None if outcome_slot is None else slot_s + outcome_slot
    facts = JobFacts(last_fire_s=slot_s, outcome_slot_s=reported, outcome=outcome)
    watch = Watch(facts=facts)
    assert watch.run(200) == alerts


def test_a_slot_fired_long_ago_and_never_started_alerts_at_the_first_check() -> None:
    watch = Watch(facts=JobFacts(last_success_s=T0 - 10, last_fire_s=int(T0) - 3600))
    watch.clock.advance(0.5)
    assert watch.check() == Raise(NOT_STARTED, T0 + 0.5, int(T0) - 3600)


def test_a_paused_job_gets_no_alert_and_counts_again_from_its_resume() -> None:
    watch = Watch(facts=JobFacts(last_success_s=T0, paused=True))
    assert watch.run(600) == []
    watch.facts = replace(watch.facts, paused=False)  # resumed just after the check at +600
    assert watch.run(120) == [(660, NO_SUCCESS)]


def test_an_alert_stays_open_while_paused_until_a_success() -> None:
    watch = Watch()
    assert watch.run(60) == [(60, NO_SUCCESS)]
    watch.facts = JobFacts(paused=True)
    assert watch.run(300) == []
    watch.facts = JobFacts(last_success_s=T0 + 362, paused=True)
    assert watch.run(5) == [(365, RESOLVED)]


def test_an_alert_of_a_job_without_alert_after_is_cleared_and_no_new_one_comes() -> None:
    watch = Watch()
    watch.run(60)
    watch.alert_after_s = None
    assert watch.run(600) == [(65, CLEARED)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (alert_value(T0, NO_SUCCESS).encode(), OpenAlert(T0, NO_SUCCESS)),
        (b'{"since": 12.5, "reason": "not_started"}', OpenAlert(12.5, NOT_STARTED)),
        (b"", None),
        (b"\xff\xfe", None),
        (b"[1, 2]", None),
        (b'{"since": "yesterday", "reason": "no_success"}', None),
        (b'{"since": true, "reason": "no_success"}', None),
        (b'{"since": 1e300, "reason": "no_success"}', None),
        (b'{"since": -1, "reason": "no_success"}', None),
        (b'{"since": 1, "reason": ""}', None),
        (b'{"since": 1}', None),
        (b"[" * 100_000, None),
        (b'{"since": 1, "reason": "x", "pad": "' + b"x" * 70_000 + b'"}', None),
    ],
)
def test_alert_records_are_read_without_trusting_them(
    raw: bytes, expected: OpenAlert | None
) -> None:
    assert parse_alert(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"1800000000", 1.8e9), (b"1800000000.25", 1800000000.25), (None, None), (b"", None),
     (b"nan", None), (b"inf", None), (b"-5", None), (b"1" * 40, None), (b"soon", None)],
)  # fmt: skip
def test_last_success_values(raw: bytes | None, expected: float | None) -> None:
    assert parse_epoch(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"1800000000 42", 1_800_000_000), (b"1800000000", 1_800_000_000), (None, None),
     (b"", None), (b" 42", None), (b"-1 42", None), (b"9" * 16 + b" 1", None), (b"x 1", None)],
)  # fmt: skip
def test_last_fire_values(raw: bytes | None, expected: int | None) -> None:
    assert parse_last_fire(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"slot": "2027-01-15T08:00:00Z", "outcome": "started"}', (1_800_000_000, "started")),
        (b'{"slot": "2027-01-15T08:00:00+00:00", "outcome": "failed"}', (1_800_000_000, "failed")),
        (b'{"slot": "2027-01-15T08:00:00", "outcome": "started"}', (None, None)),  # no zone
        (b'{"slot": "soon", "outcome": "started"}', (None, None)),
        (b'{"slot": 1800000000, "outcome": "started"}', (None, None)),
        (b'{"slot": "2027-01-15T08:00:00Z"}', (None, None)),
        (b"garbage", (None, None)),
        (None, (None, None)),
    ],
)
def test_outcome_values(raw: bytes | None, expected: tuple[int | None, str | None]) -> None:
    assert parse_outcome(raw) == expected


def test_the_notification_names_the_job_reason_and_times() -> None:
    assert notification("backup", NO_SUCCESS, T0 + 0.12345, None) == {
        "job": "backup", "reason": "no_success", "since": T0 + 0.123, "last_success": None,
    }  # fmt: skip
    assert notification("backup", NOT_STARTED, T0, T0 - 7200)["last_success"] == T0 - 7200
