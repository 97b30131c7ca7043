"""An officer closing an answered ticket (#selesai, #tutup) asks the requester for a rating, as
the 7-day close does: once per ticket, never for spam or a duplicate, only past the guard, and
never sent in the quiet hours. Through the pipeline and the closing pass on a real SQLite
database, without mail servers (tests/test_aftercare_stack.py has it on the real stack)."""

from __future__ import annotations

import email
import itertools
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.decide import lifecycle, quiet
from mailer.decide.staff import COMMANDS, Command
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from mailer.timed import closing
from storage import db, flags, tickets
from storage.tables import MessageRow, OutboxRow, Ticket
from storage.vocabulary import Resolution, TicketState
from tests.conftest import make_mail

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
RINA = "rina@example.com"
SUBJECT = "Permohonan data kemiskinan"


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def process(pipe: Pipeline, raw: bytes) -> Outcome:
    return pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw))


def the_ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def closing_mails(engine: Engine) -> list[tuple[MessageRow, OutboxRow]]:
    """The closing mails queued (each with its outbox row), oldest first."""
    with db.reading(engine) as s:
        rows = s.execute(
            select(MessageRow, OutboxRow)
            .join(OutboxRow, OutboxRow.message_pk == MessageRow.id)  # type: ignore[arg-type]
            .where(MessageRow.kind == "closing")
            .order_by(MessageRow.id)  # type: ignore[arg-type]
        ).all()
        for message, row in rows:
            s.expunge(message)
            s.expunge(row)
        return [(m, o) for m, o in rows]


def request(pipe: Pipeline, english: bool = False) -> str:
    """Rina's request (Monday 09:00 WIB); returns its Message-ID."""
    if english:
        body = "Dear officer, could you please send me the poverty data for the districts? Thank you."
        raw, mid = make_mail(RINA, subject="Request for poverty data", body=body)
    else:
        raw, mid = make_mail(RINA, subject=SUBJECT)
    assert process(pipe, raw) is Outcome.TICKET_CREATED
    return mid


def answer(pipe: Pipeline, mid: str) -> str:
    """An officer's answer to Rina, the office in Cc, two hours later; returns its Message-ID."""
    assert isinstance(pipe.clock, FrozenClock)
    pipe.clock.advance(timedelta(hours=2))
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"), ("Cc", OFFICE))
    raw, answer_mid = make_mail(
        OFFICER, to=RINA, subject=f"Re: {SUBJECT}", body="Data terlampir.", headers=headers
    )
    assert process(pipe, raw) is Outcome.FOLLOWUP
    return answer_mid


def command(pipe: Pipeline, mid: str, word: str) -> None:
    """An officer's command word, sent only to the office, in the ticket's conversation."""
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    body = f"{word}\r\n\r\nDewi"
    raw, _ = make_mail(OFFICER, to=OFFICE, subject=f"Re: {SUBJECT}", body=body, headers=headers)
    assert process(pipe, raw) is Outcome.FOLLOWUP


# --- the pure decision --------------------------------------------------------------------------


def _close(word: str) -> Command:
    action, resolution = COMMANDS[word]
    return Command(word, action, resolution)


@pytest.mark.parametrize(
    ("state", "resolution", "word", "asks", "resolution_after"),
    [
        (TicketState.ANSWERED, Resolution.ANSWERED, "selesai", True, Resolution.CLOSED),
        (TicketState.ANSWERED, Resolution.THANKS, "tutup", True, Resolution.CLOSED),
        (TicketState.ANSWERED, Resolution.SPAM, "tutup", False, None),  # keeps "spam"
        (TicketState.ANSWERED, Resolution.DUPLICATE, "selesai", False, None),  # keeps "duplicate"
        (TicketState.OPEN, Resolution.NONE, "selesai", False, Resolution.CLOSED),  # never answered
        (TicketState.WAITING, Resolution.NONE, "tutup", False, Resolution.CLOSED),
        (TicketState.CLOSED, Resolution.ANSWERED, "selesai", False, Resolution.CLOSED),  # closed already
    ],
)
def test_officer_close_asks_rating_only_after_an_answer(
    state: TicketState, resolution: Resolution, word: str, asks: bool, resolution_after: Resolution | None
) -> None:
    """#selesai/#tutup closes; it asks for a rating only on an answered ticket not settled as
    spam or duplicate, and such a settlement is kept, not overwritten by "closed"."""
    change = lifecycle.staff_command(state, _close(word), resolution)
    assert (change.state, change.event) == ("closed", "closed")
    assert (change.ask_rating, change.resolution) == (asks, resolution_after)


# --- through the pipeline -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["#selesai", "#tutup", "#close"])
def test_officer_close_after_answer_queues_one_rating_request(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, word: str
) -> None:
    """An answered ticket closed by an officer: closed, and one closing mail to the requester,
    threaded under the answer (never citing the officer's command to the office), saying the
    consultation is complete, with the four rating links."""
    mid = request(pipe)
    answer_mid = answer(pipe, mid)
    clock.advance(timedelta(minutes=30))
    command(pipe, mid, word)
    ticket = the_ticket(engine)
    assert (ticket.state, ticket.resolution) == ("closed", "closed")
    ((mail, row),) = closing_mails(engine)
    assert (row.envelope_to, mail.ticket_id) == (RINA, ticket.id)
    assert f"[{ticket.ref}]" in mail.subject
    assert "kami tutup karena layanan konsultasi telah selesai." in " ".join(mail.body_text.split())
    assert "tidak ada tanggapan lanjutan" not in mail.body_text
    assert "4 = Sangat puas" in mail.body_text and "1 = Tidak puas" in mail.body_text
    parsed = email.message_from_bytes(mail.raw, policy=policy.default)
    assert parsed["In-Reply-To"] == f"<{answer_mid}>"  # the answer Rina saw, not the #command
    cited = [r for r in str(parsed["References"]).split() if r.endswith("@mail.example.com>")]
    assert cited == [f"<{mid}>", f"<{answer_mid}>"]  # the ack is ours; the command is left out
    html = parsed.get_body(("html",))
    assert html is not None
    assert html.get_content().count('href="mailto:bps3514@bps.go.id?subject=Penilaian') == 4


@pytest.mark.parametrize(
    ("words", "answered", "resolution"),
    [
        (("#spam", "#tutup"), True, "spam"),
        (("#duplikat", "#selesai"), True, "duplicate"),
        (("#spam", "#tutup"), False, "spam"),  # settled as spam without any answer
        (("#selesai",), False, "closed"),  # never answered
        (("#tunggu", "#selesai"), True, "closed"),  # waiting for the requester, not answered
    ],
)
def test_no_rating_request_for_spam_duplicate_or_unanswered(
    pipe: Pipeline, engine: Engine, words: tuple[str, ...], answered: bool, resolution: str
) -> None:
    """A close after #spam or #duplikat, or of a ticket not answered (open or waiting), sends
    nothing; a spam/duplicate settlement stays on the closed ticket."""
    mid = request(pipe)
    if answered:
        answer(pipe, mid)
    for word in words:
        command(pipe, mid, word)
    assert (the_ticket(engine).state, the_ticket(engine).resolution) == ("closed", resolution)
    assert closing_mails(engine) == []


def test_settled_as_answered_then_closed_asks_rating(pipe: Pipeline, engine: Engine) -> None:
    """#terjawab (answered elsewhere) then #selesai: the requester was served, a rating is asked."""
    mid = request(pipe)
    command(pipe, mid, "#terjawab")
    command(pipe, mid, "#selesai")
    assert len(closing_mails(engine)) == 1


def test_rating_is_asked_once_though_the_ticket_closes_again(
    pipe: Pipeline, settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """After an officer's close with its rating request, the 7-day pass finds nothing to close;
    when the requester reopens, is answered and goes quiet, the 7-day close closes the ticket
    again without a second rating request."""
    mid = request(pipe)
    answer_mid = answer(pipe, mid)
    command(pipe, mid, "#selesai")
    clock.advance(timedelta(days=8))  # Tue 1 Dec, office hours
    assert dict(closing.close_quiet(settings, engine, Renderer(), clock)) == {}
    assert len(closing_mails(engine)) == 1
    headers = (("In-Reply-To", f"<{answer_mid}>"), ("References", f"<{mid}> <{answer_mid}>"))
    question = "Apakah ada data tahun 2023 juga?"
    raw, _ = make_mail(RINA, subject=f"Re: {SUBJECT}", body=question, headers=headers)
    assert process(pipe, raw) is Outcome.FOLLOWUP
    assert the_ticket(engine).state == "open"  # reopened within the window
    answer(pipe, mid)
    clock.advance(timedelta(days=7, hours=1))
    assert dict(closing.close_quiet(settings, engine, Renderer(), clock)) == {"closed_without_mail": 1}
    assert the_ticket(engine).state == "closed"
    assert len(closing_mails(engine)) == 1


def test_flagged_requester_gets_no_rating_request(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, events: list[dict[str, object]]
) -> None:
    """The guard: a requester whose address bounces gets no closing mail; the ticket closes and
    the log says why, naming office and ticket."""
    mid = request(pipe)
    answer(pipe, mid)
    with db.transaction(engine) as s:
        flags.flag_address(s, "3514", RINA, "bouncing", clock.now(), "550 no such user", None)
    command(pipe, mid, "#tutup")
    assert the_ticket(engine).state == "closed"
    assert closing_mails(engine) == []
    (withheld,) = [e for e in events if e["event"] == "rating_request_withheld"]
    assert "bouncing" in str(withheld["reason"])
    assert (withheld["office"], withheld["ticket"]) == ("3514", the_ticket(engine).ref)


def test_rating_request_of_a_night_close_waits_for_the_morning(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """An officer's #selesai read at 22:00 WIB: the closing mail is queued with quiet_after, so
    the sender holds it until the quiet hours end (06:00), never sending it at night."""
    mid = request(pipe)
    answer(pipe, mid)
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # Monday 22:00 WIB
    command(pipe, mid, "#selesai")
    ((_, row),) = closing_mails(engine)
    assert row.quiet_after == clock.now()
    office = pipe.settings.office("3514")
    hours = pipe.settings.acknowledgement.quiet_hours
    held = quiet.hold_until(row.quiet_after, clock.now(), office.tz, hours)
    assert held == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # Tuesday 06:00 WIB


def test_english_ticket_gets_english_closing_by_officer(pipe: Pipeline, engine: Engine) -> None:
    """A ticket opened in English: the officer's close asks for the rating in English."""
    mid = request(pipe, english=True)
    answer(pipe, mid)
    command(pipe, mid, "#close")
    ((mail, _),) = closing_mails(engine)
    assert "now closed, as the consultation is complete." in " ".join(mail.body_text.split())
    assert "4 = Very satisfied" in mail.body_text
