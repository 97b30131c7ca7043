"""Issue 13, items 3 and 5, on the real loopback stack: the attacks, sent through Postfix to
the office's Dovecot mailbox and read by the daemon, and that they no longer work.

- A stranger's fake reply-all (References to Rina's mail, Cc: Rina, sent to the office only)
  complaining: a new ticket linked to hers, her ticket untouched, and the complaint
  acknowledgement names the stranger's own ticket.
- A forged ARF report and a forged bounce naming Rina, citing no Message-ID of ours: recorded,
  nobody flagged, her next request acknowledged. A report citing our ack still flags, and her
  writing again lifts the flag (a complaint too)."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailer.clock import FrozenClock
from mailer.settings import Settings
from storage import conversations, db, flags
from storage.tables import MessageRow, Ticket
from storage.tickets import list_tickets
from tests import mailstack
from tests.conftest import make_mail, one_pass, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
COMPLAINT = "Saya ingin menyampaikan pengaduan: pelayanan PST sangat lambat, data belum dikirim."
COMPLAINT_ACK = "Pengaduan Anda atas layanan kami telah kami terima"


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def all_tickets(settings: Settings) -> list[Ticket]:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        found = sorted(list_tickets(s), key=lambda t: t.id or 0)
        for ticket in found:
            s.expunge(ticket)
    engine.dispose()
    return found


def flag_of(settings: Settings, address: str) -> flags.Flag | None:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        found = flags.address_flag(s, "3514", address)
    engine.dispose()
    return found


def stored(settings: Settings, kind: str) -> list[MessageRow]:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        rows = list(s.execute(select(MessageRow).where(MessageRow.kind == kind)).scalars())
        for row in rows:
            s.expunge(row)
    engine.dispose()
    return rows


def request(
    settings: Settings, clock: FrozenClock, who: str, subject: str, counts: tuple[int, int]
) -> EmailMessage:
    """`who`'s request through Postfix, one pass: the acknowledgement as it reached them.
    `counts`: the mails in the office mailbox with this one, and in theirs with its ack."""
    raw, _ = make_mail(who, subject=subject)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, counts[0])
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    return parsed(mailstack.wait_for(who, counts[1])[-1][0])


def test_fake_reply_all_opens_a_linked_ticket_and_its_complaint_ack_names_it(
    settings: Settings, clock: FrozenClock
) -> None:
    """Mallory cites Rina's request in References and names her in Cc, but sends to the office
    only, complaining: his mail opens a new complaint ticket linked to hers; hers keeps one
    mail and stays a request; his complaint acknowledgement names his ticket, never hers; Rina
    receives nothing more."""
    rina, mallory = requester(), requester()
    raw, rina_mid = make_mail(rina)
    mailstack.send(raw, rina, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    mailstack.wait_for(rina, 1)
    (hers,) = all_tickets(settings)
    headers = (("In-Reply-To", f"<{rina_mid}>"), ("References", f"<{rina_mid}>"), ("Cc", rina))
    fake, _ = make_mail(
        mallory, subject="Re: Permohonan data jumlah penduduk miskin 2024", body=COMPLAINT, headers=headers
    )
    mailstack.send(fake, mallory, [OFFICE])  # the Cc is a claim: the mail never reaches her
    mailstack.wait_for(OFFICE, 2)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    before, (rinas, his) = hers, all_tickets(settings)
    assert (rinas.ref, rinas.message_count, rinas.kind) == (before.ref, 1, "request")
    assert (his.requester_email, his.kind) == (mallory, "complaint")
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        assert conversations.ticket_links(s, his.id or 0) == [("from", rinas.ref, "not_a_participant")]
        assert mallory not in conversations.ticket_participants(s, rinas.id or 0)
    engine.dispose()
    ((ack_raw, _),) = mailstack.wait_for(mallory, 1)
    ack = parsed(ack_raw)
    assert his.ref in ack["Subject"] and rinas.ref not in ack["Subject"]
    body = ack.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())  # type: ignore[attr-defined]
    assert COMPLAINT_ACK in text and rinas.ref not in text
    assert len(mailstack.fetch_all(rina)) == 1  # her own acknowledgement, nothing else


def forged_arf(victim: str) -> bytes:
    """An ARF abuse report naming `victim`, returning headers of a mail we never sent."""
    return (
        "From: abuse@feedback.example\r\nTo: bps3514@bps.go.id\r\nSubject: Abuse report\r\n"
        "Message-ID: <arf.forged@feedback.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nA user marked this as spam.\r\n"
        "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{victim}>\r\n\r\n"
        "--f\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {OFFICE}\r\nMessage-ID: <pst.guessed@bps.go.id>\r\nTo: {victim}\r\n\r\n--f--\r\n"
    ).encode()


def dsn(victim: str, original_id: str, message_id: str) -> bytes:
    """A Postfix-style DSN: our mail to `victim` with `original_id` failed for good."""
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {OFFICE}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{message_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {OFFICE}\r\nTo: {victim}\r\n"
        f"Message-ID: <{original_id}>\r\n\r\n--b1--\r\n"
    ).encode()


def test_forged_reports_flag_nobody_and_her_next_request_is_acknowledged(
    settings: Settings, clock: FrozenClock
) -> None:
    """A forged ARF and a forged bounce naming Rina (no Message-ID of ours in them) are kept,
    on no ticket, and flag nobody: her next request is acknowledged."""
    rina = requester()
    request(settings, clock, rina, "Permohonan data IPM", (1, 1))
    mailstack.send(forged_arf(rina), "abuse@feedback.example", [OFFICE])
    mailstack.send(dsn(rina, "pst.guessed.2@bps.go.id", "dsn.forged@mx.example.net"), "", [OFFICE])
    mailstack.wait_for(OFFICE, 3)
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    assert flag_of(settings, rina) is None
    kept = [*stored(settings, "feedback"), *stored(settings, "bounce")]
    assert len(kept) == 2 and all(m.ticket_id is None for m in kept)
    ack = request(settings, clock, rina, "Permohonan data inflasi", (4, 2))
    assert "Permohonan data inflasi" in ack["Subject"]
    assert len(mailstack.fetch_all(rina)) == 2


def test_report_citing_our_ack_flags_until_she_writes_again(settings: Settings, clock: FrozenClock) -> None:
    """A bounce returning our ack's Message-ID flags Rina bouncing; an ARF citing it flags her
    complained; each time her writing again lifts the flag and she is acknowledged."""
    rina = requester()
    first = request(settings, clock, rina, "Permohonan data IPM", (1, 1))
    ack_id = str(first["Message-ID"]).strip("<>")
    mailstack.send(dsn(rina, ack_id, "dsn.real@mx.example.net"), "", [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    one_pass(settings, clock)
    found = flag_of(settings, rina)
    assert found is not None and found.flag == "bouncing"
    second = request(settings, clock, rina, "Permohonan data inflasi", (3, 2))
    assert flag_of(settings, rina) is None and "Permohonan data inflasi" in second["Subject"]
    arf = forged_arf(rina).replace(b"pst.guessed@bps.go.id", str(second["Message-ID"]).strip("<>").encode())
    mailstack.send(arf, "abuse@feedback.example", [OFFICE])
    mailstack.wait_for(OFFICE, 4)
    one_pass(settings, clock)
    found = flag_of(settings, rina)
    assert found is not None and found.flag == "complained"
    third = request(settings, clock, rina, "Permohonan data kemiskinan", (5, 3))
    assert flag_of(settings, rina) is None and "Permohonan data kemiskinan" in third["Subject"]
    assert len(mailstack.fetch_all(rina)) == 3
