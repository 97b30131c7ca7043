"""When people work: opening hours (every `[….hours]` table: an office's, a province head's,
the national level's) and the changes to the national working-day calendar (`[calendar]` for
every office, `[offices.CODE.calendar]` for one)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from mailer.settings.reader import TableReader

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONE_LABELS = ("WIB", "WITA", "WIT")  # a time zone as Indonesians name it
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class OfficeHours:
    """Opening hours per weekday, local time: {"mon": ("08:00", "15:30"), …}; absent = closed."""

    by_day: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class CalendarSettings:
    """Changes to the national working-day calendar: days off added (a decree, an office
    closure; with the reason) and national holidays taken back (the office works)."""

    add_days_off: dict[date, str] = field(default_factory=dict)
    remove_days_off: frozenset[date] = frozenset()

    def merged(self, other: CalendarSettings) -> CalendarSettings:
        return CalendarSettings(
            {**self.add_days_off, **other.add_days_off}, self.remove_days_off | other.remove_days_off
        )


def parse_span(value: str) -> tuple[str, str] | None:
    """("08:00", "15:30") from "08:00-15:30"; None unless it is two times of day."""
    match = _SPAN.match(value)
    if not match or not all(int(match[i]) < limit for i, limit in ((1, 24), (2, 60), (3, 24), (4, 60))):
        return None
    return f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"


def read_hours(r: TableReader) -> OfficeHours:
    """mon = "08:00-15:30", … (a day not named is closed)."""
    by_day: dict[str, tuple[str, str]] = {}
    for day in r.data:
        if day not in WEEKDAYS:
            raise r.fail(day, f"not a weekday; use {', '.join(WEEKDAYS)}")
        span = parse_span(str(r.text(day)))
        if span is None:
            raise r.fail(day, 'must look like "08:00-15:30"')
        start, end = span
        if end <= start:
            raise r.fail(day, "closing time must be after opening time")
        by_day[day] = (start, end)
    if not by_day:
        raise r.fail_table("no opening hours on any day")
    return OfficeHours(by_day)


def read_calendar(r: TableReader) -> CalendarSettings:
    """add_days_off = [["2026-12-31", "why"], …]; remove_days_off = ["2026-05-15", …]."""
    r.seen.update(("add_days_off", "remove_days_off"))
    added: dict[date, str] = {}
    value = r.data.get("add_days_off", [])
    if not isinstance(value, list):
        raise r.fail("add_days_off", 'must be a list of ["YYYY-MM-DD", "reason"] pairs')
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], str) and item[1].strip()):
            raise r.fail(f"add_days_off[{i}]", 'must be a ["YYYY-MM-DD", "reason"] pair')
        added[_date(r, f"add_days_off[{i}]", item[0])] = item[1].strip()
    removed = r.data.get("remove_days_off", [])
    if not isinstance(removed, list):
        raise r.fail("remove_days_off", 'must be a list of "YYYY-MM-DD" dates')
    taken_back = frozenset(_date(r, f"remove_days_off[{i}]", item) for i, item in enumerate(removed))
    r.done()
    return CalendarSettings(added, taken_back)


def _date(r: TableReader, key: str, value: object) -> date:
    if type(value) is date:  # a TOML local date
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise r.fail(key, f"not a date (YYYY-MM-DD): {value!r}") from None
