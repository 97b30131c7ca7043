"""End to end on the real loopback stack: mail in through Postfix, the daemon, acks out
through Postfix into the requester's Dovecot mailbox."""

from __future__ import annotations

import asyncio
import email
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from mailer.daemon import Daemon, PassReport
from mailer.decide import sla
from mailer.delivery.render import promised_date_text
from mailer.settings import Settings
from storage import cursors, db
from storage.tables import MessageRow, OutboxRow, Ticket
from storage.tickets import list_tickets
from tests import mailstack
from tests.conftest import make_mail, project_settings, requester, running

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"


def run_once(settings: Settings) -> PassReport:
    daemon = Daemon(settings)
    try:
        return asyncio.run(daemon.run_once())
    finally:
        daemon.close()


def deliver(raw: bytes, sender: str, to: str = OFFICE, expect: int = 1) -> None:
    """Send through Postfix and wait until Dovecot has it."""
    mailstack.send(raw, sender, [to])
    mailstack.wait_for(to, expect)


def tickets(settings: Settings) -> list[Ticket]:
    with db.reading(db.make_engine(settings.database_url)) as s:
        return list_tickets(s)


def test_mail_gives_one_ticket_and_one_threaded_ack(settings: Settings) -> None:
    """A request sent through Postfix yields one ticket and one acknowledgement in the
    requester's mailbox, threaded under their mail, with the office's facts and promise."""
    who = requester()
    raw, mid = make_mail(who)
    deliver(raw, who)
    run_once(settings)
    run_once(settings)  # a second pass finds nothing new
    (ticket,) = tickets(settings)
    ((ack_raw, _flags),) = mailstack.wait_for(who, 1)
    ack = email.message_from_bytes(ack_raw, policy=policy.default)
    assert ack["In-Reply-To"] == f"<{mid}>"
    assert f"<{mid}>" in ack["References"]
    assert ack["Subject"] == f"Re: Permohonan data jumlah penduduk miskin 2024 [{ticket.ref}]"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert "bps3514@bps.go.id" in ack["From"]
    assert ack.get_content_type() == "multipart/alternative"
    text = ack.get_body(("plain",)).get_content()
    html = ack.get_body(("html",)).get_content()
    promised = promised_date_text(ticket.due_at, settings.office("3514"), "id")
    assert ticket.due_at == sla.due_at(settings.office("3514"), ticket.received_at)
    for fact in (
        ticket.ref,
        "Jl. Sultan Agung No.42",
        "(0343) 423420",
        "0812-9090-3514",
        "Senin–Kamis 08.00–15.30, Jumat 08.00–16.00 WIB",
        f"paling lambat\r\n{promised}",
        "http://s.bps.go.id/3514_Pengaduan",
    ):
        assert fact in text
        assert fact.replace("&", "&amp;").split("\r\n")[-1] in html
    assert mailstack.wait_for(who, 1) and len(mailstack.fetch_all(who)) == 1


def test_office_mail_stays_unread_and_in_place(settings: Settings) -> None:
    """Staff still find every mail in the office INBOX, unread, after the daemon's pass."""
    who = requester()
    deliver(make_mail(who)[0], who)
    run_once(settings)
    ((_raw, flags),) = mailstack.fetch_all(OFFICE)
    assert b"\\Seen" not in flags
    assert b"\\Deleted" not in flags


def test_english_request_gets_english_ack(settings: Settings) -> None:
    """A request written in English is acknowledged in English."""
    who = requester()
    raw, _ = make_mail(
        who,
        subject="Request for poverty data",
        name="John Smith",
        body="Dear Sir/Madam,\r\n\r\nI would like to request the poverty data for the "
        "regency for the year 2024. Thank you.\r\n\r\nKind regards,\r\nJohn",
    )
    deliver(raw, who)
    run_once(settings)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = email.message_from_bytes(ack_raw, policy=policy.default)
    text = ack.get_body(("plain",)).get_content()
    (ticket,) = tickets(settings)
    assert f"no later than\r\n{promised_date_text(ticket.due_at, settings.office('3514'), 'en')}" in text


def test_reply_to_ack_joins_ticket_and_gets_no_second_ack(settings: Settings) -> None:
    """The requester's reply to the acknowledgement joins the same ticket, unacknowledged."""
    who = requester()
    deliver(make_mail(who)[0], who)
    run_once(settings)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = email.message_from_bytes(ack_raw, policy=policy.default)
    reply, _ = make_mail(
        who,
        subject=f"Re: {ack['Subject']}",
        body="Tambahan: yang saya perlukan per kecamatan.",
        headers=(
            ("In-Reply-To", ack["Message-ID"]),
            ("References", f"{ack['References']} {ack['Message-ID']}"),
        ),
    )
    deliver(reply, who, expect=2)
    run_once(settings)
    (ticket,) = tickets(settings)
    assert ticket.message_count == 2
    assert len(mailstack.fetch_all(who)) == 1


def test_auto_replies_and_bounces_get_no_ack(settings: Settings) -> None:
    """Out-of-office replies, list mail and a DSN bounce are recorded but never acknowledged."""
    who = requester()
    auto, _ = make_mail(
        who, subject="Automatic reply: Permohonan data", headers=(("Auto-Submitted", "auto-replied"),)
    )
    bulk, _ = make_mail(who, subject="Buletin", headers=(("Precedence", "bulk"),))
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@example.com>\r\nTo: bps3514@bps.go.id\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        b'boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n'
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.com\r\n"
        b"\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n"
    )
    deliver(auto, who, expect=1)
    deliver(bulk, who, expect=2)
    mailstack.send(bounce, "", [OFFICE])
    mailstack.wait_for(OFFICE, 3)
    run_once(settings)
    assert tickets(settings) == []
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        kinds = sorted(s.execute(select(MessageRow.kind)).scalars())
    assert kinds == ["auto_reply", "bounce", "list"]
    assert mailstack.fetch_all(who) == []


def test_one_failing_mailbox_does_not_stop_the_others(tmp_path: Path) -> None:
    """A wrong password on one office is reported for that office; the others are served."""
    settings = project_settings(tmp_path, PST_MAIL_PASSWORD_3571="wrong-password")
    who = requester()
    deliver(make_mail(who)[0], who)
    report = run_once(settings)
    assert set(report.errors) == {"3571"}
    assert "login refused" in report.errors["3571"]
    assert len(tickets(settings)) == 1
    assert len(mailstack.wait_for(who, 1)) == 1


def test_uidvalidity_change_resyncs_without_duplicates(settings: Settings, stack: mailstack.Stack) -> None:
    """After the server renumbers the mailbox (new UIDVALIDITY) nothing is ticketed twice."""
    import subprocess

    senders = [requester() for _ in range(3)]
    for i, who in enumerate(senders):
        deliver(make_mail(who)[0], who, expect=i + 1)
    run_once(settings)
    conf = Path(stack.dir) / "dovecot" / "dovecot.conf"
    subprocess.run(
        ["doveadm", "-c", str(conf), "mailbox", "update", "--uid-validity", "4242", "-u", OFFICE, "INBOX"],
        check=True,
        capture_output=True,
    )
    extra = requester()
    deliver(make_mail(extra)[0], extra, expect=4)
    run_once(settings)
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        assert cursors.get_cursor(s, "3514", "INBOX")[0] == 4242  # type: ignore[index]
        n_out = s.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
    assert len(tickets(settings)) == 4
    assert n_out == 4
    for who in [*senders, extra]:
        assert len(mailstack.fetch_all(who)) == 1


def test_tls_connections_verify_the_certificate(tmp_path: Path, stack: mailstack.Stack) -> None:
    """IMAPS and SMTP STARTTLS with authentication work against the test CA."""
    import dataclasses

    base = project_settings(tmp_path)
    office = base.office("3514")
    imap = dataclasses.replace(
        office.imap, tls="imaps", port=stack.imaps_port, host="localhost", ca_file=Path(stack.ca_file)
    )
    smtp = dataclasses.replace(
        office.smtp,
        tls="starttls",
        port=stack.submission_port,
        host="localhost",
        ca_file=Path(stack.ca_file),
        username=office.email,
        password=office.imap.password,
    )
    settings = dataclasses.replace(base, offices=(dataclasses.replace(office, imap=imap, smtp=smtp),))
    who = requester()
    deliver(make_mail(who)[0], who)
    report = run_once(settings)
    assert report.errors == {}
    assert report.sent["3514"]["sent"] == 1
    assert len(mailstack.wait_for(who, 1)) == 1


def test_tls_with_untrusted_certificate_is_refused(tmp_path: Path, stack: mailstack.Stack) -> None:
    """Without the test CA the self-signed server is not trusted: the mailbox fails, loudly."""
    import dataclasses

    base = project_settings(tmp_path)
    office = base.office("3514")
    imap = dataclasses.replace(
        office.imap, tls="imaps", port=stack.imaps_port, host="localhost", ca_file=None
    )
    settings = dataclasses.replace(base, offices=(dataclasses.replace(office, imap=imap),))
    report = run_once(settings)
    assert "TLS" in report.errors["3514"] or "certificate" in report.errors["3514"].lower()


def test_raw_mail_is_kept_byte_for_byte(settings: Settings) -> None:
    """The stored raw message is exactly what the server holds."""
    who = requester()
    deliver(make_mail(who)[0], who)
    run_once(settings)
    ((server_raw, _),) = mailstack.fetch_all(OFFICE)
    engine: Engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        stored = s.execute(select(MessageRow.raw).where(MessageRow.direction == "in")).scalar_one()
    assert stored == server_raw


def test_running_daemon_acknowledges_new_mail_within_seconds(settings: Settings) -> None:
    """With the daemon running (IMAP IDLE), a new mail is acknowledged within 3 seconds,
    and the daemon stops cleanly when asked."""
    import time

    with running(settings):
        who = requester()
        started = time.monotonic()
        mailstack.send(make_mail(who)[0], who, [OFFICE])
        assert len(mailstack.wait_for(who, 1, timeout=3.0)) == 1
        assert time.monotonic() - started < 3.0
    assert len(tickets(settings)) == 1


def test_refused_ack_is_failed_and_deferred_ack_is_retried_later(settings: Settings) -> None:
    """Postfix's 550 marks the ack failed for good; its 450 leaves it pending with a later
    attempt and the error recorded; a good ack queued behind them, on the same single
    connection, is sent regardless."""
    import dataclasses

    settings = dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, connections=1))
    good = requester()
    for sender in ("refused@fault.example", "deferred@fault.example", good):
        deliver(make_mail(sender)[0], sender, to=OFFICE, expect=0)
    mailstack.wait_for(OFFICE, 3)
    report = run_once(settings)
    assert report.sent["3514"]["sent"] == 1
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        rows = {r.envelope_to: r for r in s.execute(select(OutboxRow)).scalars()}
    refused, deferred = rows["refused@fault.example"], rows["deferred@fault.example"]
    assert refused.state == "failed" and refused.last_error.startswith("550")
    assert deferred.state == "pending" and deferred.last_error.startswith("450")
    assert deferred.attempts == 1
    assert deferred.next_attempt_at > deferred.created_at
    assert rows[good].state == "sent"
    assert len(mailstack.wait_for(good, 1)) == 1
