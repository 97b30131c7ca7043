"""The monthly report: figures checked against a hand-computed month of one office, the CSV and
HTML outputs, the CLI, and the monthly mail to the head of office (once per month)."""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.operator import cli
from mailer.settings import Settings
from mailer.timed import monthly
from storage import db, ratings, tickets
from storage.tables import MessageRow, OutboxRow

WIB = ZoneInfo("Asia/Jakarta")
HEAD = "kepala3514@bps.go.id"


def wib(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


def add(
    s: object,
    n: int,
    received: datetime,
    history: list[tuple[datetime, str, str]] = (),  # type: ignore[assignment]
    kind: str = "request",
    first_response: datetime | None = None,
    resolution: str = "",
) -> int:
    """A ticket of office 3514 with its events, as the pipeline would have stored it."""
    assert isinstance(s, db.Session)
    state = history[-1][2] if history else "open"
    ticket_id = tickets.add_ticket(
        s, ref=f"PST-3514-2026-{n:05d}", office_code="3514", state=state, kind=kind,
        requester_email=f"warga{n}@example.com", requester_name="", subject=f"Permintaan {n}", subject_key="",
        language="id", received_at=received, due_at=received, first_response_at=first_response,
        first_response_by="dewi.pst@bps.go.id" if first_response else "", resolution=resolution,
        last_message_at=received, message_count=1, created_at=received,
    )  # fmt: skip
    for at, event, after in history:
        tickets.add_ticket_event(
            s, ticket_id=ticket_id, message_pk=None, at=at, event=event, state=after, actor="", detail=""
        )
    return ticket_id


@pytest.fixture
def november(engine: Engine) -> None:
    """November 2026 at Pasuruan (3514, Mon–Thu 08:00–15:30, Fri 08:00–16:00 WIB; no holiday).

    | # | kind      | received         | first response   | working hours      | promise (2 wd)   | in |
    | 1 | request   | Mon 2 Nov 09:00  | Mon 2 Nov 11:00  | 2.0                | Wed 4 Nov 09:00  | y  |
    | 2 | request   | Tue 3 Nov 14:00  | Thu 5 Nov 10:00  | 1.5+7.5+2 = 11.0   | Thu 5 Nov 14:00  | y  |
    | 3 | complaint | Fri 6 Nov 15:00  | Wed 11 Nov 09:00 | 1+7.5+7.5+1 = 17.0 | Tue 10 Nov 15:00 | n  |
    | 4 | request   | Mon 16 Nov 10:00 | -                | -                  |                  | n  |
    | 5 | request   | Fri 30 Oct (waiting from 2 Nov: backlog, not November's)                  |
    | 6 | request   | Fri 20 Nov, spam: left out                                                 |
    | 7 | request   | Wed 25 Nov 09:00 | Wed 25 Nov 09:30 | 0.5                |                  | y  |
    | 8 | request   | Tue 1 Dec (not November's, not backlog at the end of November)             |

    Requests 4 (1, 2, 4, 7), complaints 1 (3); within 3 of 5 = 60.00 %; hours [2, 11, 17, 0.5]:
    median (2 + 11) / 2 = 6.50, 90th percentile = the ⌈0.9 × 4⌉ = 4th smallest = 17.00; backlog at
    the end of November: 4 (open) and 5 (waiting) = 2; 1 was closed on 10 Nov, 2, 3, 7 answered.
    Ratings given in November: 4, 3, 1 (a December rating of 7 not counted): average 2.67,
    index 8/3 × 25 = 66.67, grade C.
    """
    with db.transaction(engine) as s:
        closed = [(wib(11, 2, 11), "answered", "answered"), (wib(11, 10, 9), "closed", "closed")]
        t1 = add(s, 1, wib(11, 2, 9), closed, first_response=wib(11, 2, 11))
        t2 = add(
            s, 2, wib(11, 3, 14), [(wib(11, 5, 10), "answered", "answered")], first_response=wib(11, 5, 10)
        )
        t3 = add(s, 3, wib(11, 6, 15), [(wib(11, 11, 9), "answered", "answered")], kind="complaint",
                 first_response=wib(11, 11, 9))  # fmt: skip
        add(s, 4, wib(11, 16, 10))
        add(s, 5, wib(10, 30, 10), [(wib(11, 2, 10), "waiting", "waiting")])
        add(s, 6, wib(11, 20, 10), [(wib(11, 20, 11), "settled", "answered")], resolution="spam")
        t7 = add(s, 7, wib(11, 25, 9), [(wib(11, 25, 9, 30), "answered", "answered")],
                 first_response=wib(11, 25, 9, 30))  # fmt: skip
        add(s, 8, wib(12, 1, 9))
        for ticket, score, at in ((t1, 4, wib(11, 10, 10)), (t2, 3, wib(11, 20, 8)), (t3, 1, wib(11, 30, 23)),
                                  (t7, 4, wib(12, 3, 10))):  # fmt: skip
            ratings.save_rating(s, ticket, "3514", score, "reply", "x@example.com", None, at)


@pytest.mark.usefixtures("november")
def test_figures_match_the_hand_computed_month(settings: Settings, engine: Engine) -> None:
    """Every figure of the report for November equals the hand computation in the fixture."""
    with db.reading(engine) as s:
        m = monthly.compute(s, settings.office("3514"), "2026-11")
    assert m.row() == {
        "office": "3514", "name": "BPS Kabupaten Pasuruan", "month": "2026-11", "requests": "4",
        "complaints": "1", "answered_within": "3", "answered_within_pct": "60.00",
        "first_response_median_h": "6.50", "first_response_p90_h": "17.00", "open_backlog": "2",
        "ratings": "3", "rating_average": "2.67", "skm_index": "66.67", "skm_grade": "C",
    }  # fmt: skip
    assert m.daily == {2: (1, 0), 3: (1, 0), 6: (0, 1), 16: (1, 0), 25: (1, 0)}


def test_an_empty_month_has_no_percentages(settings: Settings, engine: Engine) -> None:
    """No tickets: zero counts and empty cells, not a division by zero."""
    with db.reading(engine) as s:
        row = monthly.compute(s, settings.office("3571"), "2026-11").row()
    assert (
        row["requests"],
        row["answered_within_pct"],
        row["first_response_median_h"],
        row["skm_index"],
    ) == ("0", "", "", "")


def test_month_must_be_yyyy_mm() -> None:
    """A month is written YYYY-MM."""
    for wrong in ("2026-13", "2026-1", "Nov 2026", "2026/11"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            monthly.parse_month(wrong)


@pytest.mark.usefixtures("november")
def test_cli_writes_csv_and_html(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer report --month --province --csv --html`: one CSV row and one HTML section per office
    of the province, each section with its figures table and two inline SVG charts."""
    csv_file, html_file = tmp_path / "r.csv", tmp_path / "r.html"
    code = cli.main(
        [
            "report",
            "--month",
            "2026-11",
            "--province",
            "3500",
            "--csv",
            str(csv_file),
            "--html",
            str(html_file),
        ],
        settings=settings,
    )
    assert code == 0
    with csv_file.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["office"] for r in rows] == ["3571", "3576", "3514"]
    assert rows[2]["answered_within_pct"] == "60.00" and rows[2]["skm_index"] == "66.67"
    html = html_file.read_text(encoding="utf-8")
    assert html.count('<section class="office"') == 3
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart daily"') == 3
    assert html.count('class="chart ratings"') == 3
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # no external assets
    assert "2026-11" in capsys.readouterr().out


def test_cli_refuses_unknown_scope(settings: Settings) -> None:
    """An unknown office or a malformed month is a usage error (exit 2)."""
    assert cli.main(["report", "--month", "2026-11", "--office", "9999"], settings=settings) == 2
    assert cli.main(["report", "--month", "11-2026"], settings=settings) == 2


def with_head(settings: Settings) -> Settings:
    """Only Pasuruan has a head (the others' are cleared), and it is HEAD."""
    offices = tuple(dataclasses.replace(o, head=HEAD if o.code == "3514" else "") for o in settings.offices)
    return dataclasses.replace(settings, offices=offices)


def reports(engine: Engine) -> list[tuple[str, str, datetime]]:
    with db.reading(engine) as s:
        rows = s.execute(
            select(MessageRow.to_emails, MessageRow.subject, OutboxRow.next_attempt_at)
            .join(OutboxRow, OutboxRow.message_pk == MessageRow.id)
            .where(MessageRow.kind == "report")
        ).all()
        return [(a, b, c) for a, b, c in rows]


@pytest.mark.usefixtures("november")
def test_report_mailed_to_head_on_first_working_day_once(settings: Settings, engine: Engine) -> None:
    """The periodic check sends November's report to the head on Tue 1 Dec (the first working
    day) in office hours, once; not before opening, not again that day or the next."""
    settings, renderer = with_head(settings), Renderer()
    clock = FrozenClock(datetime(2026, 12, 1, 0, 30, tzinfo=UTC))  # 07:30 WIB: closed
    assert monthly.send_due(settings, engine, renderer, clock) == {}
    clock.set(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # 09:00 WIB
    assert monthly.send_due(settings, engine, renderer, clock) == {"report_queued": 1}
    assert monthly.send_due(settings, engine, renderer, clock) == {}
    clock.set(datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    assert monthly.send_due(settings, engine, renderer, clock) == {}
    ((to, subject, _),) = reports(engine)
    assert to == HEAD and subject == "Laporan bulanan PST BPS Kabupaten Pasuruan, November 2026"
    with db.reading(engine) as s:
        raw = s.execute(select(MessageRow.raw).where(MessageRow.kind == "report")).scalar_one()
    assert b"Content-Type: text/html" in raw and b"3 (60%)" in raw  # a decimal comma where one is due


def test_first_working_day_skips_weekends_and_holidays(settings: Settings) -> None:
    """Sat 1 Aug 2026 is no working day: Mon 3 Aug is the first; a month's later days are not."""
    office = settings.office("3514")
    assert not monthly.first_working_day(office, datetime(2026, 8, 1).date())
    assert monthly.first_working_day(office, datetime(2026, 8, 3).date())
    assert not monthly.first_working_day(office, datetime(2026, 8, 4).date())
    assert monthly.previous_month(datetime(2026, 1, 2).date()) == "2025-12"


@pytest.mark.usefixtures("november")
def test_cli_send_queues_once_per_recipient(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer report --send` queues the office's report for its head; a second run says it
    was already sent and queues nothing (sending off: the outbox keeps it)."""
    settings = dataclasses.replace(
        with_head(settings), outbox=dataclasses.replace(settings.outbox, enabled=False)
    )
    assert cli.main(["report", "--month", "2026-11", "--office", "3514", "--send"], settings=settings) == 0
    assert cli.main(["report", "--month", "2026-11", "--office", "3514", "--send"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "3514: queued" in out and "3514: already_sent" in out
    assert len(reports(engine)) == 1


def test_no_report_for_a_month_before_the_office_s_first_mail(settings: Settings, engine: Engine) -> None:
    """A desk whose first mail came on 3 Dec mails no November report on 1 Dec (nor later), and
    on the first working day of January it mails December's."""
    settings, renderer = with_head(settings), Renderer()
    clock = FrozenClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # Tue 1 Dec 09:00 WIB
    assert monthly.send_due(settings, engine, renderer, clock) == {}
    with db.transaction(engine) as s:
        add(s, 1, wib(12, 3, 9))
    assert monthly.send_due(settings, engine, renderer, clock) == {}
    assert reports(engine) == []
    clock.set(datetime(2027, 1, 4, 2, 0, tzinfo=UTC))  # Mon 4 Jan 2027: 1 Jan a holiday, 2-3 a weekend
    assert monthly.send_due(settings, engine, renderer, clock) == {"report_queued": 1}


def test_report_send_of_a_month_before_the_first_mail_says_why(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --send` for October, when the first mail came in November, queues nothing and says why."""
    settings = dataclasses.replace(
        with_head(settings), outbox=dataclasses.replace(settings.outbox, enabled=False)
    )
    with db.transaction(engine) as s:
        add(s, 1, wib(11, 2, 9))
    assert cli.main(["report", "--month", "2026-10", "--office", "3514", "--send"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "3514: before_first_mail" in out and "the first on 2026-11-02" in out
    assert reports(engine) == []
