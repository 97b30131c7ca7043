"""SLA: when the clock starts and when the answer is due, in office time, counting working days
(weekdays with office hours, minus Indonesian holidays and cuti bersama from `holidays`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from mailer.settings import Settings, load_settings
from mailer.sla import clock_start, due_at, is_working_day
from tests.conftest import ROOT, office_env

WIB = ZoneInfo("Asia/Jakarta")
WIT = ZoneInfo("Asia/Jayapura")


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return load_settings(ROOT / "settings.toml", environ=office_env("pw"))


def wib(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A wall-clock time in Western Indonesia (UTC+7)."""
    return datetime(year, month, day, hour, minute, tzinfo=WIB)


def wit(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A wall-clock time in Eastern Indonesia (UTC+9)."""
    return datetime(year, month, day, hour, minute, tzinfo=WIT)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 3, 18), "Cuti Bersama Hari Suci Nyepi"),
        (date(2026, 3, 19), "Hari Suci Nyepi"),
        (date(2026, 3, 20), "Cuti Bersama Hari Raya Idul Fitri"),
        (date(2026, 3, 23), "Cuti Bersama Hari Raya Idul Fitri"),
        (date(2026, 3, 24), "Cuti Bersama Hari Raya Idul Fitri"),
        (date(2026, 12, 24), "Cuti Bersama Hari Raya Natal"),
        (date(2026, 12, 25), "Hari Raya Natal"),
        (date(2027, 1, 1), "Tahun Baru"),
        (date(2027, 1, 5), "Isra Mikraj"),
    ],
)
def test_calendar_facts_the_sla_table_relies_on(day: date, name: str) -> None:
    """The `holidays` data really has these days off (with cuti bersama), as the SLA cases assume."""
    found = holidays.country_holidays(
        "ID", years=day.year, categories=("public", "government"), language="id"
    )
    assert name in (found.get(day) or "")


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 17), True),  # Tuesday before the leave
        (date(2026, 3, 18), False),  # cuti bersama Nyepi (a Wednesday)
        (date(2026, 3, 23), False),  # cuti bersama Idul Fitri (a Monday)
        (date(2026, 3, 24), False),
        (date(2026, 3, 25), True),
        (date(2026, 11, 27), True),  # an ordinary Friday
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 12, 24), False),  # cuti bersama Natal
        (date(2026, 12, 31), True),
    ],
)
def test_is_working_day(shipped: Settings, day: date, working: bool) -> None:
    """Weekends, national holidays and joint leave days are not working days; other weekdays are."""
    assert is_working_day(shipped.office("3514"), day) is working


SLA_CASES = [
    pytest.param(
        "3514",
        datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        wib(2026, 11, 23, 9, 0),
        wib(2026, 11, 25, 9, 0),
        id="monday-0900-wib-due-wednesday-same-time",
    ),
    pytest.param(
        "3571",
        wib(2026, 11, 23, 20, 0),
        wib(2026, 11, 24, 8, 0),
        wib(2026, 11, 26, 8, 0),
        id="monday-2000-starts-tuesday-0800-due-thursday-0800",
    ),
    pytest.param(
        "3576",
        wib(2026, 11, 23, 6, 30),
        wib(2026, 11, 23, 8, 0),
        wib(2026, 11, 25, 8, 0),
        id="before-opening-starts-at-opening",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 23, 15, 30),
        wib(2026, 11, 24, 8, 0),
        wib(2026, 11, 26, 8, 0),
        id="at-closing-time-is-after-hours",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 27, 15, 45),
        wib(2026, 11, 27, 15, 45),
        wib(2026, 12, 1, 15, 30),
        id="friday-1545-pasuruan-due-tuesday-clamped-1530",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 26, 15, 40),
        wib(2026, 11, 27, 8, 0),
        wib(2026, 12, 1, 8, 0),
        id="thursday-after-closing-starts-friday-0800",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 28, 10, 0),
        wib(2026, 11, 30, 8, 0),
        wib(2026, 12, 2, 8, 0),
        id="saturday-starts-monday-0800",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 29, 23, 59),
        wib(2026, 11, 30, 8, 0),
        wib(2026, 12, 2, 8, 0),
        id="sunday-night-starts-monday-0800",
    ),
    pytest.param(
        "3514",
        wib(2026, 3, 17, 10, 0),
        wib(2026, 3, 17, 10, 0),
        wib(2026, 3, 26, 10, 0),
        id="day-before-nyepi-idul-fitri-leave-due-after-it",
    ),
    pytest.param(
        "3514",
        wib(2026, 3, 19, 10, 0),
        wib(2026, 3, 25, 8, 0),
        wib(2026, 3, 27, 8, 0),
        id="on-nyepi-starts-after-the-leave",
    ),
    pytest.param(
        "3514",
        wib(2026, 12, 23, 10, 0),
        wib(2026, 12, 23, 10, 0),
        wib(2026, 12, 29, 10, 0),
        id="before-christmas-leave-due-tuesday-after",
    ),
    pytest.param(
        "1808",
        wib(2026, 12, 23, 10, 0),
        wib(2026, 12, 23, 10, 0),
        wib(2026, 12, 30, 10, 0),
        id="before-christmas-leave-3-days",
    ),
    pytest.param(
        "1808",
        wib(2026, 12, 30, 10, 0),
        wib(2026, 12, 30, 10, 0),
        wib(2027, 1, 6, 10, 0),
        id="across-new-year-and-isra-mikraj-2027",
    ),
    pytest.param(
        "8205",
        wit(2026, 11, 23, 10, 0),
        wit(2026, 11, 23, 10, 0),
        wit(2026, 11, 26, 10, 0),
        id="halmahera-utara-3-working-days-wit",
    ),
]


@pytest.mark.parametrize(("code", "received", "start", "due"), SLA_CASES)
def test_clock_start_and_due_at(
    shipped: Settings, code: str, received: datetime, start: datetime, due: datetime
) -> None:
    """The clock starts at receipt or the next opening; the answer is due N working days later."""
    office = shipped.office(code)
    assert clock_start(office, received) == start
    got = due_at(office, received)
    assert got == due
    assert got.utcoffset() == due.utcoffset()  # expressed in the office's own time zone
    assert got.replace(tzinfo=None) == due.replace(tzinfo=None)


def test_same_utc_instant_differs_between_wib_and_wit_offices(shipped: Settings) -> None:
    """07:00 UTC is 14:00 WIB (open) in Pasuruan but 16:00 WIT (closed) in Halmahera Utara."""
    received = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    pasuruan, halut = shipped.office("3514"), shipped.office("8205")
    assert clock_start(pasuruan, received) == wib(2026, 11, 23, 14, 0)
    assert clock_start(halut, received) == wit(2026, 11, 24, 8, 0)
    assert due_at(pasuruan, received) == wib(2026, 11, 25, 14, 0)
    assert due_at(halut, received) == wit(2026, 11, 27, 8, 0)


@pytest.mark.parametrize(
    ("working_days", "due"), [(1, wib(2026, 11, 24, 9, 0)), (5, wib(2026, 11, 30, 9, 0))]
)
def test_due_at_with_explicit_working_days(shipped: Settings, working_days: int, due: datetime) -> None:
    """An explicit working_days overrides the office's own figure."""
    assert due_at(shipped.office("3514"), wib(2026, 11, 23, 9, 0), working_days) == due


def test_due_is_never_outside_office_hours(shipped: Settings) -> None:
    """For receipts every 37 minutes over two weeks, the deadline falls on a working day within hours."""
    office = shipped.office("3514")
    received = wib(2026, 12, 14, 0, 0)
    while received < wib(2026, 12, 28, 0, 0):
        due = due_at(office, received).astimezone(office.tz)
        opening, closing = office.hours.by_day[("mon", "tue", "wed", "thu", "fri")[due.weekday()]]
        assert is_working_day(office, due.date()), received
        assert opening <= f"{due:%H:%M}" <= closing, received
        assert due - received >= timedelta(days=2), received
        received += timedelta(minutes=37)
