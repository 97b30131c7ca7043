"""Kediri's complaint mailbox (ipds3571@bps.go.id, `[offices.3571.complaint_mailbox]`) on the real
loopback stack: watched like the main mailbox with a cursor of its own, every mail in it opens a
complaint (or makes the ticket it follows up one), with the complaint acknowledgement to the
person and the notice to the head; it fails alone; `mailer status` lists it."""

from __future__ import annotations

import asyncio
import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import FrozenClock
from mailer.daemon import Daemon, open_database
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome, ParsedMail, Role
from mailer.operator import repair, status
from mailer.pipeline import reading
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.cursors import get_cursor
from storage.tables import DeadLetter
from tests import mailstack
from tests.conftest import COMPLAINT_MAILBOX, make_mail, one_pass, only_ticket, project_settings, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3571@bps.go.id"
HEAD = "placeholder.kepala3571@bps.go.id"  # the shipped settings' (a loopback mailbox like any)
PLAIN = "Mohon informasi jadwal konsultasi statistik minggu depan. Terima kasih."


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def test_mail_to_the_complaint_mailbox_opens_a_complaint(settings: Settings, clock: FrozenClock) -> None:
    """A mail delivered to ipds3571@ only by its envelope (Bcc: no complaint address in To/Cc,
    no complaint words) opens a complaint ticket: the person gets the complaint acknowledgement,
    the head the notice, and the complaint mailbox gets nothing from us."""
    mailstack.clear(HEAD)
    who = requester()
    raw, _ = make_mail(who, to="Undisclosed recipients:;", subject="Jadwal konsultasi", body=PLAIN)
    mailstack.send(raw, who, [COMPLAINT_MAILBOX])
    mailstack.wait_for(COMPLAINT_MAILBOX, 1)
    report = one_pass(settings, clock)
    assert report.fetched["3571"]["ticket_created"] == 1
    ticket = only_ticket(settings)
    assert (ticket.office_code, ticket.kind, ticket.requester_email) == ("3571", "complaint", who)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = parsed(ack_raw)
    assert ticket.ref in ack["Subject"] and ack["From"].addresses[0].addr_spec == OFFICE
    assert "Pengaduan Anda atas layanan kami telah kami terima" in text_of(ack)
    ((notice_raw, _),) = mailstack.wait_for(HEAD, 1)
    notice = parsed(notice_raw)
    assert notice["Subject"].startswith(f"Pengaduan layanan {ticket.ref}")
    assert "jadwal konsultasi" in text_of(notice).lower()
    assert len(mailstack.fetch_all(COMPLAINT_MAILBOX)) == 1  # the complaint alone: no ack to it
    one_pass(settings, clock)  # the cursor moved: read again, nothing new
    assert (len(mailstack.fetch_all(who)), len(mailstack.fetch_all(HEAD))) == (1, 1)


def test_follow_up_in_the_complaint_mailbox_makes_the_ticket_a_complaint(
    settings: Settings, clock: FrozenClock
) -> None:
    """A requester who answers our acknowledgement of a request to ipds3571@ (threaded by
    In-Reply-To) makes that ticket a complaint, acknowledged as one and sent to the head."""
    mailstack.clear(HEAD)
    who = requester()
    raw, _ = make_mail(who, to=OFFICE)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack_mid = str(parsed(ack_raw)["Message-ID"]).strip("<>")
    assert only_ticket(settings).kind == "request"
    follow, _ = make_mail(
        who,
        to=COMPLAINT_MAILBOX,
        subject="Re: Permohonan data",
        body="Sampai sekarang datanya belum saya terima.",
        headers=(("In-Reply-To", f"<{ack_mid}>"), ("References", f"<{ack_mid}>")),
    )
    mailstack.send(follow, who, [COMPLAINT_MAILBOX])
    mailstack.wait_for(COMPLAINT_MAILBOX, 1)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert ticket.kind == "complaint"
    _, (complaint_ack_raw, _) = mailstack.wait_for(who, 2)
    assert "Pengaduan Anda atas layanan kami telah kami terima" in text_of(parsed(complaint_ack_raw))
    ((notice_raw, _),) = mailstack.wait_for(HEAD, 1)
    assert "belum saya terima" in text_of(parsed(notice_raw))


def test_complaint_mailbox_fails_alone(tmp_path: Path, clock: FrozenClock) -> None:
    """A wrong password on the complaint mailbox is reported for 3571, and Kediri's main
    mailbox is read all the same."""
    settings = project_settings(tmp_path, PST_MAIL_PASSWORD_3571_PENGADUAN="wrong-password")
    who = requester()
    raw, _ = make_mail(who, to=OFFICE)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    daemon = Daemon(settings, clock=clock)
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    assert "3571" in report.errors and "AUTHENTICATIONFAILED" in report.errors["3571"].upper()
    assert report.fetched["3571"]["ticket_created"] == 1
    assert only_ticket(settings).requester_email == who


def test_status_lists_the_complaint_mailbox(settings: Settings, clock: FrozenClock) -> None:
    """`mailer status` lists Kediri's complaint mailbox, not read yet before the first pass and
    with its own cursor after it."""
    engine = open_database(settings, clock)
    with db.reading(engine) as s:
        before = status.text(status.collect(s, settings, clock.now(), "3571"), settings, clock.now())
    assert any(f"mailbox  {COMPLAINT_MAILBOX}/INBOX" in line and "not read yet" in line for line in before)
    who = requester()
    raw, _ = make_mail(who, to=COMPLAINT_MAILBOX, subject="Pelayanan lambat", body=PLAIN)
    mailstack.send(raw, who, [COMPLAINT_MAILBOX])
    mailstack.wait_for(COMPLAINT_MAILBOX, 1)
    one_pass(settings, clock)
    with db.reading(engine) as s:
        after = status.text(status.collect(s, settings, clock.now(), "3571"), settings, clock.now())
    engine.dispose()
    mine = [line for line in after if f"{COMPLAINT_MAILBOX}/INBOX" in line]
    assert len(mine) == 1 and "UIDVALIDITY" in mine[0] and "last UID" in mine[0]
    assert any("mailbox  INBOX" in line for line in after)


def test_answer_from_the_complaint_account_answers_the_complaint(
    settings: Settings, clock: FrozenClock
) -> None:
    """An officer answering a complaint from the complaint mailbox's own account, with the office
    in Cc, answers the ticket (its address is the office's own); nothing more goes to the person."""
    who = requester()
    raw, mid = make_mail(who, to=COMPLAINT_MAILBOX, subject="Pelayanan lambat", body=PLAIN)
    mailstack.send(raw, who, [COMPLAINT_MAILBOX])
    mailstack.wait_for(COMPLAINT_MAILBOX, 1)
    one_pass(settings, clock)
    mailstack.wait_for(who, 1)
    answer, _ = make_mail(
        COMPLAINT_MAILBOX,
        to=who,
        subject="Re: Pelayanan lambat",
        body="Mohon maaf atas keterlambatannya; jadwal konsultasi Selasa pukul 09.00.",
        headers=(("Cc", OFFICE), ("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>")),
    )
    mailstack.send(answer, COMPLAINT_MAILBOX, [who, OFFICE])
    mailstack.wait_for(OFFICE, 1)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert (ticket.kind, ticket.state, ticket.first_response_by) == (
        "complaint",
        "answered",
        COMPLAINT_MAILBOX,
    )
    assert len(mailstack.wait_for(who, 2)) == 2  # the complaint ack and the answer


def test_dead_letter_of_the_complaint_mailbox_is_retried_as_a_complaint(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail of the complaint mailbox that broke a step is kept under `ipds3571@bps.go.id/INBOX`;
    `dead-letters retry` runs it again as the complaint mailbox's: a complaint ticket."""
    engine = open_database(settings, clock)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(requester(), to=COMPLAINT_MAILBOX, subject="Jadwal", body=PLAIN)
    real_parse = reading.parse

    def broken(data: bytes) -> ParsedMail:
        raise ValueError("simulated parser failure")

    monkeypatch.setattr(reading, "parse", broken)
    box = f"{COMPLAINT_MAILBOX}/INBOX"
    assert pipe.process(FetchedMail("3571", box, 7, 1, raw, None, Role.COMPLAINT)) is Outcome.DEAD_LETTER
    monkeypatch.setattr(reading, "parse", real_parse)
    with db.reading(engine) as s:
        (dead,) = s.execute(select(DeadLetter)).scalars()
        assert get_cursor(s, "3571", box) == (7, 1) and get_cursor(s, "3571", "INBOX") is None
    assert dead.folder == box and dead.id is not None
    assert repair.retry_dead_letter(settings, engine, clock, dead.id).result == "resolved"
    engine.dispose()
    assert only_ticket(settings).kind == "complaint"
