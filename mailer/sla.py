"""The office's promise as a deadline: working days of office time after a request arrives.

Rule: the receipt time in the office's time zone is moved to the next opening when it falls
outside office hours or on a day off; the deadline is the same time of day N working days
later (clamped to that day's closing time). Working days are the weekdays with office hours,
minus Indonesian national holidays and joint leave days (cuti bersama) from `holidays`.
Pure functions of `received_at` and the office: time is a parameter.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from mailer.settings import WEEKDAYS, Office

_MAX_SCAN_DAYS = 366  # a deadline further than a year away means the calendar is broken


@lru_cache(maxsize=64)
def _national_days_off(year: int) -> frozenset[date]:
    """Indonesian public holidays and cuti bersama of a year."""
    found = holidays.country_holidays("ID", years=year, categories=("public", "government"))
    return frozenset(found.keys())


def _hours(office: Office, day: date) -> tuple[time, time] | None:
    """(opening, closing) local time on `day`, or None when the office is closed."""
    span = office.hours.by_day.get(WEEKDAYS[day.weekday()])
    if span is None or day in _national_days_off(day.year):
        return None
    return time.fromisoformat(span[0]), time.fromisoformat(span[1])


def is_working_day(office: Office, day: date) -> bool:
    return _hours(office, day) is not None


def _next_working_day(office: Office, day: date) -> date:
    for _ in range(_MAX_SCAN_DAYS):
        day += timedelta(days=1)
        if is_working_day(office, day):
            return day
    raise RuntimeError(f"office {office.code}: no working day within a year of {day}")


def clock_start(office: Office, received_at: datetime) -> datetime:
    """When the clock starts: the receipt time, or the next opening if the office is closed."""
    local = received_at.astimezone(office.tz)
    hours = _hours(office, local.date())
    if hours is not None:
        opening, closing = hours
        if local.time() < opening:
            return datetime.combine(local.date(), opening, office.tz)
        if local.time() < closing:
            return local
    day = _next_working_day(office, local.date())
    next_hours = _hours(office, day)
    assert next_hours is not None
    return datetime.combine(day, next_hours[0], office.tz)


def due_at(office: Office, received_at: datetime, working_days: int | None = None) -> datetime:
    """The deadline (aware, office time zone) for a request received at `received_at`."""
    start = clock_start(office, received_at)
    day = start.date()
    for _ in range(working_days if working_days is not None else office.sla_working_days):
        day = _next_working_day(office, day)
    hours = _hours(office, day)
    assert hours is not None
    return datetime.combine(day, min(start.time().replace(tzinfo=None), hours[1]), office.tz)


# --- escalation and digests (appended: built on is_working_day and clock_start) ----------------
# Working time as a line: each working day is one unit, a moment within office hours is the
# share of that day's hours gone. Escalation counts on it ("2 working days after the deadline",
# "75% of the time used"), so that a Friday evening or a holiday week moves nothing.


def opening_hours(office: Office, day: date) -> tuple[datetime, datetime] | None:
    """(opening, closing) as aware local datetimes on `day`, or None when it is no working day."""
    span = office.hours.by_day.get(WEEKDAYS[day.weekday()])
    if span is None or not is_working_day(office, day):
        return None
    return (
        datetime.combine(day, time.fromisoformat(span[0]), office.tz),
        datetime.combine(day, time.fromisoformat(span[1]), office.tz),
    )


def is_working_time(office: Office, at: datetime) -> bool:
    """Whether `at` is within the office's (or a manager's) working hours on a working day."""
    local = at.astimezone(office.tz)
    span = opening_hours(office, local.date())
    return span is not None and span[0] <= local < span[1]


def _step_working_day(office: Office, day: date, step: int) -> date:
    for _ in range(_MAX_SCAN_DAYS):
        day += timedelta(days=step)
        if is_working_day(office, day):
            return day
    raise RuntimeError(f"office {office.code}: no working day within a year of {day}")


def _position(office: Office, at: datetime) -> tuple[date, float]:
    """Where `at` falls in working time: (working day, share of its hours gone, 0..1). Before
    the opening or on a day off it is the end (1.0) of the previous working day."""
    local = at.astimezone(office.tz)
    span = opening_hours(office, local.date())
    if span is not None and local >= span[0]:
        opening, closing = span
        return local.date(), min(1.0, (local - opening) / (closing - opening))
    return _step_working_day(office, local.date(), -1), 1.0


def shift_working_days(office: Office, at: datetime, days: float) -> datetime:
    """The moment `days` working days (fractions: shares of a day's hours) after `at`, or before
    it when negative; aware, in the office's time zone."""
    day, share = _position(office, at)
    total = share + days
    whole = int(total // 1)
    share = total - whole
    for _ in range(abs(whole)):
        day = _step_working_day(office, day, 1 if whole > 0 else -1)
    span = opening_hours(office, day)
    assert span is not None
    return span[0] + (span[1] - span[0]) * share


def working_days_late(office: Office, due: datetime, now: datetime) -> int:
    """How many working days have begun since the deadline's day (0 on the day it falls due)."""
    if now <= due:
        return 0
    day, last, late = due.astimezone(office.tz).date(), now.astimezone(office.tz).date(), 0
    while day < last and late < _MAX_SCAN_DAYS:
        day += timedelta(days=1)
        late += is_working_day(office, day)
    return late


def working_days_after(office: Office, first: date, last: date) -> list[date]:
    """The working days d with first < d <= last, in order (for many "days late" at once)."""
    days, day = [], first
    while day < last:
        day += timedelta(days=1)
        if is_working_day(office, day):
            days.append(day)
    return days
