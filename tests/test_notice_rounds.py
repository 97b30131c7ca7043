"""Notices once per ticket, level and clock round: a fresh clock (the requester writing again after
an answer, a reopening) climbs the ladder again; a pause (#tunggu) moves the deadline within the
round. The round rule by tables (pure), then whole stories through the pipeline and the sweep on
SQLite, and the migration of notices sent before rounds existed."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select, text

from mailer.clock import FrozenClock
from mailer.decide import lifecycle
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Role
from mailer.operator import cli
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from mailer.timed import digest
from mailer.timed.sweep import Sweeper
from storage import db, sweeps, tickets
from storage.tables import Ticket, TicketNotice
from storage.vocabulary import NoticeLevel
from tests.conftest import make_mail
from tests.test_escalate import MON, at

OFFICE, OFFICER, RINA = "bps3514@bps.go.id", "dewi.pst@bps.go.id", "rina@example.com"
R, H, P = NoticeLevel.REMINDER, NoticeLevel.OFFICE_HEAD, NoticeLevel.PROVINCE_HEAD
_uids = itertools.count(1)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], 1),
        (["answered"], 1),
        (["answered", "replied"], 2),  # the requester wrote again after the answer
        (["answered", "thanked"], 1),  # a pure thank-you: the ticket stays answered
        (["waiting", "resumed"], 1),  # a pause moves the deadline, same clock
        (["answered", "replied", "waiting", "resumed"], 2),
        (["closed", "reopened"], 2),  # the requester within the reopen window, or #buka
        (["answered", "replied", "answered", "replied", "closed", "reopened"], 4),
        (["note", "settled", "answered"], 1),
    ],
)
def test_clock_round_counts_fresh_starts_only(events: list[str], expected: int) -> None:
    """The round is 1 plus the fresh-clock events; pauses, answers and notes leave it."""
    history = [(MON, event, "open") for event in events]
    assert lifecycle.clock_round(history) == expected


# --- stories through the pipeline and the sweep ------------------------------------------------


class Desk:
    """One ticket of Rina's at Pasuruan, moved by mails at given times, swept at given times."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.clock = FrozenClock(MON)
        self.pipe = Pipeline(settings, engine, Renderer(), self.clock)
        self.last_mid = ""

    def mail(self, when: datetime, sender: str, body: str, to: str = OFFICE, cc: str = "") -> None:
        headers = (("In-Reply-To", f"<{self.last_mid}>"), ("References", f"<{self.last_mid}>"))
        subject = "Re: Permohonan data" if self.last_mid else "Permohonan data"
        raw, mid = make_mail(
            sender, to=to, subject=subject, body=body, date=when,
            headers=(*headers, ("Cc", cc)) if cc else headers if self.last_mid else (),
        )  # fmt: skip
        self.clock.set(when)
        self.pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw, when, Role.INBOX))
        self.last_mid = mid

    def step(self, when: datetime, action: str) -> None:
        if action == "request":
            self.mail(when, RINA, "Saya mohon data penduduk miskin 2024.")
        elif action == "answer":
            self.mail(when, OFFICER, "Data terlampir.", to=RINA, cc=OFFICE)
        elif action == "reply":
            self.mail(when, RINA, "Satu pertanyaan lagi: apakah ada data tahun 2023 per desa?")
        elif action == "thanks":
            self.mail(when, RINA, "Terima kasih banyak, Bu.")
        elif action.startswith("#"):  # a command to the office only
            self.mail(when, OFFICER, f"{action} catatan petugas")
        else:
            assert action == "sweep"
            Sweeper(self.settings, self.engine, Renderer(), FrozenClock(when)).run_once()

    def play(self, steps: list[str]) -> None:
        """Steps "MM-DD HH:MM action" in 2026, WIB."""
        for step in steps:
            day, hhmm, action = step.split(" ", 2)
            self.step(at(f"2026-{day}", hhmm), action)

    def notices(self) -> list[tuple[int, int]]:
        """[(round, level)] of every notice, in the order written."""
        with db.reading(self.engine) as s:
            rows = s.execute(select(TicketNotice).order_by(TicketNotice.id)).scalars().all()  # type: ignore[arg-type]
        return [(n.clock_round, n.level) for n in rows]

    def ticket(self) -> Ticket:
        with db.reading(self.engine) as s:
            (found,) = tickets.list_tickets(s)
            s.expunge(found)
            return found


STORIES = {
    # Answered late, the requester asks again Thursday 10:00: due Monday 30 Nov 10:00, a new
    # reminder on Friday afternoon and a new head's notice on Monday; round 1's rest never comes.
    "reply after answer": (
        ["11-23 10:00 request", "11-24 14:00 sweep", "11-25 11:00 sweep",
         "11-25 12:00 answer", "11-26 10:00 reply", "11-26 11:00 sweep",
         "11-27 15:00 sweep", "11-27 15:30 sweep", "11-30 11:00 sweep",
         "11-30 11:30 sweep"],
        [(1, R), (1, H), (2, R), (2, H)], 2,
    ),
    # Waiting from Tuesday 15:00 to Wednesday 10:00 (2 h 30 of office time): due Wednesday 12:30,
    # within reach of the reminder again; the same clock, so only the head's notice follows.
    "pause and resume": (
        ["11-23 10:00 request", "11-24 14:00 sweep", "11-24 15:00 #tunggu",
         "11-25 10:00 reply", "11-25 11:00 sweep", "11-25 12:00 sweep",
         "11-25 13:00 sweep", "11-27 15:00 sweep"],
        [(1, R), (1, H), (1, P)], 1,
    ),
    # Closed by the office, the requester writes again within the reopen window.
    "reopened after closing": (
        ["11-23 10:00 request", "11-24 14:00 sweep", "11-24 15:00 #selesai",
         "11-25 10:00 reply", "11-25 11:00 sweep", "11-26 14:00 sweep",
         "11-27 11:00 sweep"],
        [(1, R), (2, R), (2, H)], 2,
    ),
    # A thank-you after the answer keeps the ticket answered: no new clock, nothing sent.
    "thank-you after answer": (
        ["11-23 10:00 request", "11-24 14:00 sweep", "11-24 15:00 answer",
         "11-25 10:00 thanks", "11-27 11:00 sweep"],
        [(1, R)], 1,
    ),
    # Two fresh starts: rounds 1 and 2 answered after their reminder, round 3 left to its head.
    "two more rounds": (
        ["11-23 10:00 request", "11-24 14:00 sweep", "11-24 15:00 answer",
         "11-25 10:00 reply", "11-26 14:00 sweep", "11-26 15:00 answer",
         "11-27 09:00 reply", "11-30 14:00 sweep", "11-30 14:30 sweep",
         "12-01 10:00 sweep"],
        [(1, R), (2, R), (3, R), (3, H)], 3,
    ),
}  # fmt: skip


@pytest.mark.parametrize("story", list(STORIES))
def test_notices_once_per_round_and_level(settings: Settings, engine: Engine, story: str) -> None:
    """Each story's notices are exactly the (round, level) listed, however often the sweep runs."""
    steps, expected, final_round = STORIES[story]
    desk = Desk(settings, engine)
    desk.play(steps)
    assert desk.notices() == expected
    assert desk.ticket().clock_round == final_round


def test_ticket_round_matches_its_history(settings: Settings, engine: Engine) -> None:
    """tickets.clock_round is what lifecycle.clock_round counts from the ticket's history."""
    desk = Desk(settings, engine)
    for step in STORIES["two more rounds"][0]:
        desk.play([step])
        with db.reading(engine) as s:
            (t,) = tickets.list_tickets(s)
            assert t.id is not None
            _, history = tickets.ticket_clock(s, t.id)
            assert t.clock_round == lifecycle.clock_round(history)


def test_a_second_notice_in_the_same_round_fails_its_transaction(settings: Settings, engine: Engine) -> None:
    """The unique (ticket, round, level) refuses a second row; another round takes it."""
    desk = Desk(settings, engine)
    desk.step(MON, "request")
    row = {"ticket_id": desk.ticket().id, "level": H, "recipient": "x", "outbox_id": None, "due_at": MON,
           "created_at": MON}  # fmt: skip
    with db.transaction(engine) as s:
        sweeps.add_notices(s, [{**row, "clock_round": 1}])
    with pytest.raises(Exception, match=r"(?i)unique"), db.transaction(engine) as s:
        sweeps.add_notices(s, [{**row, "clock_round": 1}])
    with db.transaction(engine) as s:
        sweeps.add_notices(s, [{**row, "clock_round": 2}])
    assert desk.notices() == [(1, H), (2, H)]


def test_show_and_sla_explain_the_rounds(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer show` marks the fresh start and lists the notices by round; `mailer sla` names
    the round whose deadline it explains."""
    desk = Desk(settings, engine)
    desk.play(STORIES["reply after answer"][0])
    ref = desk.ticket().ref
    capsys.readouterr()
    assert cli.main(["show", ref], settings=settings) == 0
    shown = capsys.readouterr().out
    assert "(clock round 2: restarted by a reply, a reopening or a clarification)" in shown
    assert "[clock round 2: a fresh deadline, notices start again]" in shown
    notices = [line.split()[2:5] for line in shown.splitlines() if line.startswith("  notice    :")]
    assert notices == [["round", "1", "reminder"], ["round", "1", "office_head"],
                       ["round", "2", "reminder"], ["round", "2", "office_head"]]  # fmt: skip
    assert cli.main(["sla", ref], settings=settings) == 0
    since = "Kamis, 26 November 2026 pukul 10.00 WIB"
    assert f"putaran ke-2: waktu dihitung ulang sejak {since}" in capsys.readouterr().out


def test_digest_lists_a_ticket_late_by_its_current_round(settings: Settings, engine: Engine) -> None:
    """Asked again Thursday 10:00 (due Monday 10:00), unanswered on Tuesday: the head's digest
    lists it one working day late, by the fresh deadline (four by the first one)."""
    desk = Desk(settings, engine)
    desk.play(STORIES["reply after answer"][0][:5])
    head = digest.manager_by_address(settings, "placeholder.kepala3514@bps.go.id")
    assert head is not None
    now = at("2026-12-01", "09:00")
    with db.reading(engine) as s:
        found = Sweeper(settings, engine, Renderer(), FrozenClock(now)).compose(s, head, now.date(), now)
    (section,) = found.sections
    assert [(line.ref, line.days_late) for line in section.lines] == [(desk.ticket().ref, 1)]
    assert (section.overdue, section.due_today) == (1, 0)


# --- the migration -------------------------------------------------------------------------------


def test_migration_puts_old_notices_in_their_tickets_current_round(settings: Settings) -> None:
    """Upgrading from 0010: a ticket's round counts its fresh starts so far, and each notice
    already sent belongs to that round (nothing is sent again about a ladder already climbed)."""
    engine = db.make_engine(settings.database_url)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")
        office = "INSERT INTO offices VALUES ('3514', 'x', 'x', '3500', 'Asia/Jakarta', '2026-11-23')"
        conn.execute(text(office))
        for tid, events in ((1, ()), (2, ("replied", "waiting", "resumed")), (3, ("replied", "reopened"))):
            conn.execute(text(
                "INSERT INTO tickets (id, ref, office_code, state, kind, requester_email, requester_name, "
                "subject, subject_key, language, received_at, due_at, last_message_at, message_count, "
                "created_at, first_response_by, last_officer, resolution) VALUES (:id, :ref, '3514', "
                "'open', 'request', 'r@x', '', '', '', 'id', '2026-11-23', '2026-11-25', '2026-11-23', 1, "
                "'2026-11-23', '', '', '')"), {"id": tid, "ref": f"PST-{tid}"})  # fmt: skip
            for event in events:
                conn.execute(text(
                    "INSERT INTO ticket_events (ticket_id, at, event, state, actor, detail) "
                    "VALUES (:t, '2026-11-24', :e, 'open', '', '')"), {"t": tid, "e": event})  # fmt: skip
            conn.execute(text(
                "INSERT INTO ticket_notices (ticket_id, level, recipient, due_at, created_at) "
                "VALUES (:t, 0, 'x', '2026-11-25', '2026-11-24')"), {"t": tid})  # fmt: skip
    db.migrate(engine)
    with db.reading(engine) as s:
        rounds = s.execute(text("SELECT id, clock_round FROM tickets ORDER BY id")).all()
        noticed = s.execute(text("SELECT ticket_id, clock_round FROM ticket_notices ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rounds] == [(1, 1), (2, 2), (3, 3)]
    assert [tuple(r) for r in noticed] == [(1, 1), (2, 2), (3, 3)]
