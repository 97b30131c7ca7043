"""SLA: when the clock starts and when the answer is due, in office time, counting working days
(weekdays with office hours, minus Indonesian holidays and cuti bersama from `holidays`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from mailer.decide.lifecycle import clock_basis
from mailer.decide.sla import clock_start, deadline, due_at, is_working_day, office_time, working_days_after
from mailer.settings import Office, Settings, load_settings
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
        wib(2026, 11, 25, 15, 30),
        id="monday-2000-tuesday-is-day-1-due-wednesday-closing",
    ),
    pytest.param(
        "3576",
        wib(2026, 11, 23, 6, 30),
        wib(2026, 11, 23, 8, 0),
        wib(2026, 11, 24, 15, 30),
        id="before-opening-that-day-is-day-1",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 23, 15, 30),
        wib(2026, 11, 24, 8, 0),
        wib(2026, 11, 25, 15, 30),
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
        wib(2026, 11, 30, 15, 30),
        id="thursday-after-closing-friday-is-day-1-due-monday-closing",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 28, 10, 0),
        wib(2026, 11, 30, 8, 0),
        wib(2026, 12, 1, 15, 30),
        id="saturday-monday-is-day-1-due-tuesday-closing",
    ),
    pytest.param(
        "3514",
        wib(2026, 11, 29, 23, 59),
        wib(2026, 11, 30, 8, 0),
        wib(2026, 12, 1, 15, 30),
        id="sunday-night-monday-is-day-1",
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
        wib(2026, 3, 26, 15, 30),
        id="on-nyepi-counts-from-after-the-leave",
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
    pytest.param(
        "3514",
        wib(2026, 12, 5, 14, 49),
        wib(2026, 12, 7, 8, 0),
        wib(2026, 12, 8, 15, 30),
        id="issue-example-saturday-1449-due-tuesday-1530",
    ),
    pytest.param(
        "3514",
        wib(2026, 12, 1, 0, 0),
        wib(2026, 12, 1, 8, 0),
        wib(2026, 12, 2, 15, 30),
        id="midnight-tuesday-is-day-1",
    ),
    pytest.param(
        "3576",
        wib(2026, 11, 27, 16, 0),
        wib(2026, 11, 30, 8, 0),
        wib(2026, 12, 1, 15, 30),
        id="friday-closing-1600-monday-is-day-1",
    ),
    pytest.param(
        "3571",
        wib(2026, 3, 20, 10, 0),
        wib(2026, 3, 25, 8, 0),
        wib(2026, 3, 26, 15, 30),
        id="on-idul-fitri-cuti-bersama-counts-from-after-the-leave",
    ),
    pytest.param(
        "3514",
        wib(2026, 12, 24, 10, 0),
        wib(2026, 12, 28, 8, 0),
        wib(2026, 12, 29, 15, 30),
        id="on-christmas-cuti-bersama-monday-28-is-day-1",
    ),
    pytest.param(
        "8205",
        wit(2026, 11, 27, 17, 0),
        wit(2026, 11, 30, 8, 0),
        wit(2026, 12, 2, 15, 30),
        id="halmahera-utara-friday-evening-wit-3-days-to-wednesday-closing",
    ),
    pytest.param(
        "8205",
        datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        wit(2026, 11, 24, 8, 0),
        wit(2026, 11, 26, 15, 30),
        id="utc-0700-is-1600-wit-after-closing",
    ),
    pytest.param(
        "1808",
        wib(2026, 12, 31, 18, 0),
        wib(2027, 1, 4, 8, 0),
        wib(2027, 1, 7, 15, 30),
        id="tulang-bawang-new-years-eve-evening-skips-isra-mikraj",
    ),
]


@pytest.mark.parametrize(("code", "received", "start", "due"), SLA_CASES)
def test_clock_start_and_due_at(
    shipped: Settings, code: str, received: datetime, start: datetime, due: datetime
) -> None:
    """In service hours: due N working days later at the same time (clamped to closing); outside
    them: the next opening's day is day 1 and it is due at the closing of day N."""
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
    assert due_at(halut, received) == wit(2026, 11, 26, 15, 30)  # Tuesday is day 1 of 3


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
        counted = working_days_after(office, received.astimezone(office.tz).date(), due.date())
        assert len(counted) in (1, 2), received  # day 1 is the receipt's day or the next
        received += timedelta(minutes=37)


# --- changes to the calendar, pauses, the explanation ---------------------------------------


def with_calendar(settings: Settings, code: str, **changes: object) -> Office:
    office = settings.office(code)
    return dataclasses.replace(office, calendar=dataclasses.replace(office.calendar, **changes))


def test_office_closure_moves_the_deadline(shipped: Settings) -> None:
    """A day the office closes (settings: calendar.add_days_off) is skipped like a holiday."""
    office = with_calendar(shipped, "3514", add_days_off={date(2026, 11, 24): "pindah kantor"})
    assert due_at(office, wib(2026, 11, 23, 10, 0)) == wib(2026, 11, 26, 10, 0)
    found = deadline(office, wib(2026, 11, 23, 10, 0))
    assert (date(2026, 11, 24), "libur/tutup menurut pengaturan: pindah kantor") in found.skipped


def test_decree_takes_back_a_joint_leave_day(shipped: Settings) -> None:
    """A cuti bersama the settings take back (calendar.remove_days_off) is a working day again."""
    office = with_calendar(shipped, "3514", remove_days_off=frozenset({date(2026, 12, 24)}))
    assert due_at(office, wib(2026, 12, 23, 10, 0)) == wib(2026, 12, 28, 10, 0)
    assert due_at(shipped.office("3514"), wib(2026, 12, 23, 10, 0)) == wib(2026, 12, 29, 10, 0)


def test_settings_calendar_applies_to_every_office(tmp_path: Path) -> None:
    """[calendar] add_days_off in settings.toml reaches every office, with its reason."""
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[calendar]\nadd_days_off = []", '[calendar]\nadd_days_off = [["2026-11-24", "SE Kepala"]]'
    )
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, environ=office_env("pw"))
    assert all(not is_working_day(o, date(2026, 11, 24)) for o in settings.offices)


def test_paused_span_adds_its_office_time(shipped: Settings) -> None:
    """Waiting for the requester from Monday 13:00 to Tuesday 09:00 costs 2:30 + 1:00 of office
    hours (Pasuruan closes 15:30), which the deadline moves by."""
    office = shipped.office("3514")
    paused = [(wib(2026, 11, 23, 13, 0), wib(2026, 11, 24, 9, 0))]
    assert office_time(office, *paused[0]) == timedelta(hours=3, minutes=30)
    # due Wednesday 10:00 without the pause; 3:30 of office time later is Wednesday 13:30
    assert due_at(office, wib(2026, 11, 23, 10, 0), paused=paused) == wib(2026, 11, 25, 13, 30)


def test_pause_that_crosses_closing_carries_to_next_day(shipped: Settings) -> None:
    """Office time added after the deadline continues at the next opening, skipping the weekend."""
    office = shipped.office("3514")
    paused = [(wib(2026, 11, 23, 10, 0), wib(2026, 11, 23, 14, 0))]  # 4 hours
    # due Wednesday 25 Nov 10:00 + 4:00 = 14:00 the same day
    assert due_at(office, wib(2026, 11, 23, 10, 0), paused=paused) == wib(2026, 11, 25, 14, 0)
    # received Wednesday 10:00 → due Friday 10:00 (closes 16:00) + 7:00 → Monday 08:00 + 1:00
    paused = [(wib(2026, 11, 25, 8, 0), wib(2026, 11, 25, 15, 0))]
    assert due_at(office, wib(2026, 11, 25, 10, 0), paused=paused) == wib(2026, 11, 30, 9, 0)


def test_explanation_names_skipped_days_and_pauses(shipped: Settings) -> None:
    """The explanation (mailer sla) lists the counted days, the skipped ones with their reasons,
    the pauses and the due time."""
    office = shipped.office("3514")
    paused = [(wib(2026, 3, 17, 13, 0), wib(2026, 3, 17, 14, 0))]
    text = "\n".join(deadline(office, wib(2026, 3, 17, 10, 0), paused=paused).explain())
    nyepi = "Rabu, 18 Maret 2026: libur nasional/cuti bersama: Cuti Bersama Hari Suci Nyepi"
    assert f"dilewati         {nyepi}" in text
    assert "dilewati         Sabtu, 21 Maret 2026: tidak ada jam layanan" in text
    assert "hari kerja       Rabu, 25 Maret 2026" in text
    assert (
        "ditunda          Selasa, 17 Maret 2026 pukul 13.00 WIB s.d. Selasa, 17 Maret 2026 pukul 14.00 WIB: "
        "+1 jam waktu layanan"
    ) in text
    assert text.endswith("tenggat            Kamis, 26 Maret 2026 pukul 11.00 WIB")


def test_clock_basis_from_history() -> None:
    """The clock counts from the last fresh start (a reply after an answer), and the waiting
    spans after it are paused; an unfinished wait runs to now."""
    t = [datetime(2026, 11, 23, h, 0, tzinfo=UTC) for h in range(2, 10)]
    history = [
        (t[1], "waiting", "waiting"),
        (t[2], "resumed", "open"),
        (t[3], "answered", "answered"),
        (t[4], "replied", "open"),
        (t[5], "waiting", "waiting"),
        (t[6], "note", "waiting"),
    ]
    assert clock_basis(t[0], history, t[7]) == (t[4], [(t[5], t[7])])
    assert clock_basis(t[0], history[:2], t[7]) == (t[0], [(t[1], t[2])])


def test_explanation_of_mail_outside_hours_counts_the_opening_day() -> None:
    """Saturday 5 December 2026 14:49 to Pasuruan: `mailer sla` skips Saturday and Sunday, counts
    Monday 7 and Tuesday 8 and ends at Tuesday's closing (the issue's example)."""
    office = load_settings(ROOT / "settings.toml", environ=office_env("pw")).office("3514")
    lines = deadline(office, wib(2026, 12, 5, 14, 49)).explain()
    text = "\n".join(lines)
    assert "dilewati         Sabtu, 5 Desember 2026: tidak ada jam layanan" in text
    assert "dilewati         Minggu, 6 Desember 2026: tidak ada jam layanan" in text
    counted = [line for line in lines if line.lstrip().startswith("hari kerja")]
    assert counted == [
        "  hari kerja       Senin, 7 Desember 2026",
        "  hari kerja       Selasa, 8 Desember 2026",
    ]
    assert text.endswith("tenggat            Selasa, 8 Desember 2026 pukul 15.30 WIB")
