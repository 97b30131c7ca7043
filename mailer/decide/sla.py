"""The office's promise as a deadline: working days of office time after a request arrives.

The rule (README, "The promise", has examples):
1. A mail received in service hours is due at the same time of day N working days later
   (N = the office's `sla_working_days`), clamped to that day's closing time.
2. A mail received outside service hours (evening, night, a day off) counts from the next
   opening: that working day is day 1, and it is due at the closing of day N. (Monday 20:00,
   N = 2: due Wednesday at closing, not Thursday at opening: the same office minute, but the
   public and the managers read the day.)
3. Working days are the weekdays with office hours, minus Indonesian national holidays and
   joint leave days (cuti bersama) from `holidays`, minus the days the settings add
   (`calendar.add_days_off`, globally for a decree or per office for a closure), plus the
   holidays the settings take back (`calendar.remove_days_off`).
4. Time waiting for the requester does not count: the office time inside each paused span
   is added to the deadline, counted in office hours.
Pure functions of the office and the times given: time is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays
from babel.dates import format_date

from mailer.settings import WEEKDAYS, Office

_MAX_SCAN_DAYS = 366  # a deadline further than a year away means the calendar is broken

Span = tuple[datetime, datetime]


@lru_cache(maxsize=64)
def _national_days_off(year: int) -> dict[date, str]:
    """Indonesian public holidays and cuti bersama of a year, with their Indonesian names."""
    found = holidays.country_holidays("ID", years=year, categories=("public", "government"), language="id")
    return dict(found.items())


def day_off_reason(office: Office, day: date) -> str | None:
    """Why the office is closed on `day` ("Sabtu", "Hari Raya Natal", "ditutup: …"), or None."""
    calendar = office.calendar
    if day in calendar.add_days_off:
        return f"libur/tutup menurut pengaturan: {calendar.add_days_off[day]}"
    if WEEKDAYS[day.weekday()] not in office.hours.by_day:
        return "tidak ada jam layanan"
    if day in calendar.remove_days_off:
        return None
    name = _national_days_off(day.year).get(day)
    return f"libur nasional/cuti bersama: {name}" if name else None


def _hours(office: Office, day: date) -> tuple[time, time] | None:
    """(opening, closing) local time on `day`, or None when the office is closed."""
    if day_off_reason(office, day) is not None:
        return None
    span = office.hours.by_day[WEEKDAYS[day.weekday()]]
    return time.fromisoformat(span[0]), time.fromisoformat(span[1])


def is_working_day(office: Office, day: date) -> bool:
    return _hours(office, day) is not None


def _next_working_day(office: Office, day: date, skipped: list[tuple[date, str]] | None = None) -> date:
    for _ in range(_MAX_SCAN_DAYS):
        day += timedelta(days=1)
        reason = day_off_reason(office, day)
        if reason is None:
            return day
        if skipped is not None:
            skipped.append((day, reason))
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


def office_time(office: Office, start: datetime, end: datetime) -> timedelta:
    """The office hours between two moments (what a paused span costs the office)."""
    total, cursor = timedelta(0), start.astimezone(office.tz)
    end = end.astimezone(office.tz)
    while cursor < end:
        hours = _hours(office, cursor.date())
        if hours is not None:
            opening = datetime.combine(cursor.date(), hours[0], office.tz)
            closing = datetime.combine(cursor.date(), hours[1], office.tz)
            lo, hi = max(cursor, opening), min(end, closing)
            if hi > lo:
                total += hi - lo
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time(0), office.tz)
    return total


def add_office_time(office: Office, at: datetime, amount: timedelta) -> datetime:
    """The moment `amount` of office hours after `at`."""
    cursor = clock_start(office, at)
    left = amount
    for _ in range(_MAX_SCAN_DAYS):
        hours = _hours(office, cursor.date())
        assert hours is not None  # clock_start and the loop only land on open moments
        closing = datetime.combine(cursor.date(), hours[1], office.tz)
        if cursor + left <= closing:
            return cursor + left
        left -= closing - cursor
        day = _next_working_day(office, cursor.date())
        opening = _hours(office, day)
        assert opening is not None
        cursor = datetime.combine(day, opening[0], office.tz)
    raise RuntimeError(f"office {office.code}: {amount} of office time does not fit in a year")


@dataclass
class Deadline:
    """A deadline and how it was reached, for `mailer sla REF`."""

    received: datetime
    start: datetime
    counted: list[date] = field(default_factory=list)
    skipped: list[tuple[date, str]] = field(default_factory=list)
    paused: list[tuple[datetime, datetime, timedelta]] = field(default_factory=list)
    due: datetime | None = None

    def explain(self) -> list[str]:
        """The deadline step by step, in the office's local time, dates as people write them
        ("Senin, 23 November 2026 pukul 09.00 WIB")."""
        lines = [f"diterima           {moment_text(self.received)}"]
        moved = " (di luar jam layanan: pembukaan berikutnya)" if self.start != self.received else ""
        lines.append(f"mulai dihitung     {moment_text(self.start)}{moved}")
        for day in self.counted:
            lines.append(f"  hari kerja       {_day(day)}")
        for day, reason in self.skipped:
            lines.append(f"  dilewati         {_day(day)}: {reason}")
        for start, end, cost in self.paused:
            cost_text = f"+{_hours_text(cost)} waktu layanan"
            lines.append(f"  ditunda          {moment_text(start)} s.d. {moment_text(end)}: {cost_text}")
        assert self.due is not None
        lines.append(f"tenggat            {moment_text(self.due)}")
        return lines


def _day(day: date) -> str:
    return format_date(day, "EEEE, d MMMM y", locale="id")


def moment_text(when: datetime) -> str:
    return f"{_day(when.date())} pukul {when:%H.%M} {when.tzname()}"


def _days_off_between(office: Office, received: date, start: date) -> list[tuple[date, str]]:
    """The days off from the day of receipt up to (not including) the clock's first day, with
    their reasons (the day of receipt only if it was a day off: an evening is no day off)."""
    found, day = [], received
    while day < start:
        reason = day_off_reason(office, day)
        if reason is not None:
            found.append((day, reason))
        day += timedelta(days=1)
    return found


def _hours_text(amount: timedelta) -> str:
    """ "1 jam 30 menit", "45 menit"."""
    minutes = int(amount.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return " ".join([*([f"{hours} jam"] if hours else []), *([f"{rest} menit"] if rest or not hours else [])])


def deadline(
    office: Office, received_at: datetime, working_days: int | None = None, paused: Sequence[Span] = ()
) -> Deadline:
    """The deadline of a request received at `received_at`, with its reasoning."""
    received = received_at.astimezone(office.tz)
    start = clock_start(office, received)
    result = Deadline(received, start)
    days = working_days if working_days is not None else office.sla_working_days
    day = start.date()
    if start == received:  # in service hours: the same time of day, N working days later
        for _ in range(days):
            day = _next_working_day(office, day, result.skipped)
            result.counted.append(day)
        hours = _hours(office, day)
        assert hours is not None
        due = datetime.combine(day, min(start.time().replace(tzinfo=None), hours[1]), office.tz)
    else:  # outside them: the opening's day is day 1, due at the closing of day N
        result.skipped.extend(_days_off_between(office, received.date(), day))
        result.counted.append(day)
        for _ in range(days - 1):
            day = _next_working_day(office, day, result.skipped)
            result.counted.append(day)
        hours = _hours(office, day)
        assert hours is not None
        due = datetime.combine(day, hours[1], office.tz)
    for begin, end in paused:
        cost = office_time(office, begin, end)
        result.paused.append((begin.astimezone(office.tz), end.astimezone(office.tz), cost))
        if cost:
            due = add_office_time(office, due, cost)
    result.due = due
    return result


def due_at(
    office: Office, received_at: datetime, working_days: int | None = None, paused: Sequence[Span] = ()
) -> datetime:
    """The deadline (aware, office time zone) for a request received at `received_at`."""
    found = deadline(office, received_at, working_days, paused).due
    assert found is not None
    return found


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
