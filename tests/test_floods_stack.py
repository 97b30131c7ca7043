"""Floods and reflection (issue 13) end to end on the real loopback Postfix and Dovecot: the
attacks of the issue sent through Postfix, read over IMAP by `mailer once`, and what reaches
the mailboxes afterwards. Dovecot's LMTP writes the Return-Path the limits count."""

from __future__ import annotations

import asyncio
import email
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailer.clock import FrozenClock
from mailer.daemon import Daemon
from mailer.settings import Settings
from storage import db
from storage.tables import MessageRow, OutboxRow, TicketEvent
from storage.vocabulary import WithheldEvent
from tests import mailstack
from tests.conftest import make_mail
from tests.test_end_to_end import run_once, tickets
from tests.test_escalate import WIB

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
HEAD = "placeholder.kepala3514@bps.go.id"
COMPLAINT = "Saya ingin menyampaikan pengaduan: sudah 5 hari data belum dikirim.\r\n\r\nBudi"
FLOOD = 30


def mails(address: str) -> list[EmailMessage]:
    return [email.message_from_bytes(raw, policy=policy.default) for raw, _ in mailstack.fetch_all(address)]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def next_monday_morning() -> datetime:
    """08:30 WIB on the Monday after today: a working morning at Pasuruan, always ahead."""
    today = datetime.now(WIB).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, clock_time(8, 30), WIB)


def test_floods_and_reflection_through_postfix(settings: Settings) -> None:
    """30 complaints from one address, 30 mails from one author each naming a different Reply-To
    on another domain ("Yth. Hadiah Gratis klik evil.example"), and 6 authors behind one envelope
    sender, all through Postfix: every mail is a ticket; no Reply-To third party gets anything;
    the complainer, the author and the envelope sender's authors get 3 acknowledgements each;
    the head of office gets 2 complaint notices and, in the next digest, the line "28 pengaduan
    lain dari <complainer>"; every withheld mail is a ticket event."""
    tag = uuid.uuid4().hex[:8]
    complainer, evil, bulk = f"budi.{tag}@example.com", f"hadiah.{tag}@evil.example", f"bulk.{tag}@mx.example"
    victims = [f"korban{i}.{tag}@other.example" for i in range(FLOOD)]
    authors = [f"orang{i}.{tag}@example.net" for i in range(6)]
    mailstack.clear(HEAD)
    for i in range(FLOOD):
        raw, _ = make_mail(complainer, subject=f"Keluhan layanan nomor {i}", body=COMPLAINT, name="Budi")
        mailstack.send(raw, complainer, [OFFICE])
        subject = f"Yth. Hadiah Gratis klik evil.example {i}"
        raw, _ = make_mail(evil, subject=subject, name="Hadiah Gratis", headers=(("Reply-To", victims[i]),))
        mailstack.send(raw, evil, [OFFICE])
    for i, author in enumerate(authors):
        raw, _ = make_mail(author, subject=f"Permohonan data {i}", name=f"Orang {i}")
        mailstack.send(raw, bulk, [OFFICE])  # MAIL FROM: one envelope sender for all of them
    total = 2 * FLOOD + len(authors)
    mailstack.wait_for(OFFICE, total, timeout=60)

    run_once(settings)  # read everything, acknowledge within the limits, send
    run_at(settings, next_monday_morning())  # notices held for the opening go; the head's digest
    mailstack.wait_for(complainer, 3)
    mailstack.wait_for(evil, 3)
    time.sleep(1.5)  # anything queued by mistake has reached Dovecot by now

    assert len(tickets(settings)) == total  # never dropped: every mail is a ticket
    assert len(mails(complainer)) == 3 and len(mails(evil)) == 3
    assert sum(len(mails(a)) for a in authors) == 3  # counted by the envelope sender
    assert all(mails(v) == [] for v in victims)
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        to = set(s.execute(select(OutboxRow.envelope_to)).scalars())
        sender_of_acks = set(
            s.execute(
                select(OutboxRow.envelope_sender)
                .join(MessageRow, MessageRow.id == OutboxRow.message_pk)  # type: ignore[arg-type]
                .where(MessageRow.kind == "ack", OutboxRow.author.in_(authors))  # type: ignore[attr-defined]
            ).scalars()
        )
        held = [(e.event, e.actor) for e in s.execute(select(TicketEvent)).scalars() if "withheld" in e.event]
    assert not to & set(victims)
    assert sender_of_acks == {bulk}  # Dovecot's Return-Path, read and stored
    assert held.count((WithheldEvent.ACK, complainer)) == FLOOD - 3
    assert held.count((WithheldEvent.ACK, evil)) == FLOOD - 3
    assert held.count((WithheldEvent.COMPLAINT_NOTICE, complainer)) == FLOOD - 2

    head = mails(HEAD)
    notices = [m for m in head if str(m["Subject"]).startswith("Pengaduan layanan")]
    digests = [text_of(m) for m in head if m["X-PST-Notice"] == "digest"]
    assert len(notices) == 2
    line = f"{FLOOD - 2} pengaduan lain dari {complainer}"
    assert sum(line in d for d in digests) == 1


def run_at(settings: Settings, now: datetime) -> None:
    """One `mailer once` with the clock at `now`."""
    daemon = Daemon(settings, clock=FrozenClock(now.astimezone(UTC)))
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    assert report.errors == {}
