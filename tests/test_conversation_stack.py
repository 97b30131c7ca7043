"""Conversations on the real loopback stack: a requester complaining in the thread of their
request (the complaint acknowledgement in their Dovecot mailbox and the notice in the head's,
once), the server's copy of our acknowledgement in the office's Sent folder (not an answer),
and an officer's answer read from the Sent folder before the request it answers."""

from __future__ import annotations

import dataclasses
import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailer.clock import Clock, FrozenClock
from mailer.settings import Settings
from storage import db, tickets
from storage.tables import MessageRow, OutboxRow
from tests import mailstack
from tests.conftest import make_mail, one_pass, only_ticket, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
HEAD = "kepala3514@bps.go.id"


def stored(settings: Settings) -> list[tuple[str, str]]:
    """(kind, direction) of every stored message, in order."""
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        rows = [
            (m.kind, m.direction) for m in s.execute(select(MessageRow).order_by(MessageRow.id)).scalars()
        ]  # type: ignore[arg-type]
    engine.dispose()
    return rows


def queued_to(settings: Settings, address: str) -> int:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        count = len(s.execute(select(OutboxRow).where(OutboxRow.envelope_to == address)).all())
    engine.dispose()
    return count


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def request_with_ack(settings: Settings, clock: Clock | None = None) -> tuple[str, str, EmailMessage]:
    """A requester's mail through Postfix and one pass: (requester, request Message-ID, the
    acknowledgement as it landed in their mailbox)."""
    who = requester()
    raw, mid = make_mail(who)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    return who, mid, parsed(ack_raw)


def reply_to_ack(who: str, ack: EmailMessage, written: str, quote: str) -> bytes:
    """A reply to the acknowledgement as Thunderbird writes it, `quote` under what they wrote."""
    ack_mid = str(ack["Message-ID"]).strip("<>")
    headers = (("In-Reply-To", f"<{ack_mid}>"), ("References", f"<{ack_mid}>"))
    raw, _ = make_mail(
        who, subject=f"Re: {ack['Subject']}", body=f"{written}\r\n\r\n{quote}", headers=headers
    )
    return raw


def test_complaint_in_the_thread_reaches_the_head_once(settings: Settings, clock: FrozenClock) -> None:
    """A reply quoting our acknowledgement stays a request; a reply that complains makes the
    ticket a complaint: the requester finds the complaint acknowledgement and the head the
    notice, once, however often they complain again in the thread."""
    office = dataclasses.replace(settings.office("3514"), head=HEAD)
    settings = dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )
    mailstack.clear(HEAD)
    who, _, ack = request_with_ack(settings, clock)
    ack_text = text_of(ack)
    pasted = ack_text.replace("\n", "\r\n")  # a client quoting without marks: the channels and all
    mailstack.send(reply_to_ack(who, ack, "Baik, saya tunggu datanya.", pasted), who, [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    assert only_ticket(settings).kind == "request" and queued_to(settings, who) == 1
    marked = "Pada Sen, 23 Nov 2026 09.00 PST menulis:\r\n" + "".join(
        f"> {line}\r\n" for line in ack_text.splitlines()
    )
    complaint = "Saya ingin menyampaikan pengaduan: sudah 5 hari data belum dikirim."
    mailstack.send(reply_to_ack(who, ack, complaint, marked), who, [OFFICE])
    mailstack.wait_for(OFFICE, 3)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert ticket.kind == "complaint"
    _, (complaint_ack_raw, _) = mailstack.wait_for(who, 2)
    complaint_ack = parsed(complaint_ack_raw)
    assert ticket.ref in complaint_ack["Subject"]
    assert "Pengaduan Anda atas layanan kami telah kami terima" in text_of(complaint_ack)
    ((notice_raw, _),) = mailstack.wait_for(HEAD, 1)
    notice = parsed(notice_raw)
    assert notice["Subject"].startswith(f"Pengaduan layanan {ticket.ref}")
    assert notice["Reply-To"] == f"{who}, {OFFICE}"
    assert "belum dikirim" in text_of(notice) and "dalam percakapan tiket" in text_of(notice)
    mailstack.send(reply_to_ack(who, ack, "Saya mau komplain lagi, pelayanan PST lambat.", ""), who, [OFFICE])
    mailstack.wait_for(OFFICE, 4)
    one_pass(settings, clock)
    assert (queued_to(settings, who), queued_to(settings, HEAD)) == (2, 1)
    assert (len(mailstack.fetch_all(who)), len(mailstack.fetch_all(HEAD))) == (2, 1)


def test_our_ack_saved_in_the_sent_folder_is_not_an_answer(settings: Settings) -> None:
    """The office server's copy of our acknowledgement in the Sent folder is skipped: the ticket
    stays open with no first response and no second message; an officer's answer saved after it
    is read and answers the ticket."""
    who, mid, _ = request_with_ack(settings)
    ((ack_raw, _),) = mailstack.fetch_all(who)
    mailstack.append(OFFICE, ack_raw, folder="Sent", flags=(b"\\Seen",))
    one_pass(settings)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.first_response_at) == ("open", None)
    assert stored(settings) == [("request", "in"), ("ack", "out")]
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    answer, _ = make_mail(
        OFFICE, to=who, subject="Re: Permohonan data", body="Data terlampir.", headers=headers
    )
    mailstack.append(OFFICE, answer, folder="Sent", flags=(b"\\Seen",))
    one_pass(settings)
    assert (only_ticket(settings).state, only_ticket(settings).first_response_by) == ("answered", OFFICE)
    assert stored(settings)[-1] == ("staff_answer", "out")


def test_answer_read_before_its_request_answers_the_ticket(settings: Settings) -> None:
    """An officer's answer found in the Sent folder in a pass before the request it answers
    (the request reached the INBOX after the INBOX pass) joins the ticket the request opens:
    answered, first response at the answer's time."""
    who = requester()
    request, mid = make_mail(who)
    now = datetime.now(UTC).replace(microsecond=0)
    answered_at = now - timedelta(seconds=30)
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    answer, _ = make_mail(
        OFFICE, to=who, subject="Re: Permohonan data", body="Data terlampir.", headers=headers
    )
    mailstack.append(OFFICE, answer, folder="Sent", flags=(b"\\Seen",), msg_time=answered_at)
    one_pass(settings)
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        assert tickets.list_tickets(s) == []
    engine.dispose()
    mailstack.append(OFFICE, request, msg_time=answered_at - timedelta(minutes=1))
    one_pass(settings)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.first_response_by) == ("answered", OFFICE)
    assert ticket.first_response_at == answered_at
    assert stored(settings) == [("staff_answer", "out"), ("request", "in")]  # no ack after the answer
