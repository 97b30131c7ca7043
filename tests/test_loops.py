"""Loops and abuse in the pipeline, on a real SQLite database without mail servers: bounces and
complaints about our mail flag the address and join the ticket, flagged addresses get no
automatic mail, and one address gets at most `max_per_sender_per_hour` acknowledgements."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.delivery import guard
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db, flags
from storage.tables import MessageRow, OutboxRow, Ticket, TicketEvent
from storage.tickets import list_tickets
from tests.conftest import make_mail

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, office: str = "3514") -> FetchedMail:
    return FetchedMail(office, "INBOX", 7, next(_uids), raw)


def dsn(
    rcpt: str, original_id: str | None, action: str = "failed", status: str = "5.1.1", office: str = OFFICE
) -> bytes:
    """A Postfix-style DSN about our mail to `rcpt` (returning its headers when original_id is given)."""
    original = (
        f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {office}\r\nTo: {rcpt}\r\n"
        f"Message-ID: <{original_id}>\r\n\r\n"
        if original_id
        else ""
    )
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {office}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn.{next(_uids)}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n"
        f"{original}--b1--\r\n"
    ).encode()


def arf(rcpt: str, original_id: str) -> bytes:
    """An ARF abuse report about our mail to `rcpt`."""
    return (
        "From: fbl@feedback.example\r\nTo: bps3514@bps.go.id\r\nSubject: Abuse report\r\n"
        f"Message-ID: <arf.{next(_uids)}@feedback.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nA user marked this as spam.\r\n"
        "--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{rcpt}>\r\n\r\n"
        "--f\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_id}>\r\nTo: {rcpt}\r\n\r\n--f--\r\n"
    ).encode()


def ack_of(engine: Engine, rcpt: str) -> MessageRow:
    with db.reading(engine) as s:
        return s.execute(
            select(MessageRow).where(MessageRow.kind == "ack", MessageRow.to_emails == rcpt)
        ).scalar_one()


def flag(engine: Engine, rcpt: str, office: str = "3514") -> flags.Flag | None:
    with db.reading(engine) as s:
        return flags.address_flag(s, office, rcpt)


def acks(engine: Engine, rcpt: str | None = None) -> int:
    with db.reading(engine) as s:
        query = select(func.count()).select_from(OutboxRow)
        if rcpt:
            query = query.where(OutboxRow.envelope_to == rcpt)
        return int(s.execute(query).scalar_one())


def tickets(engine: Engine) -> list[Ticket]:
    with db.reading(engine) as s:
        return list_tickets(s)


def test_bounce_of_our_ack_flags_the_address_on_its_ticket(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A permanent-failure DSN returning our ack's Message-ID joins that ticket (no new ticket,
    no ack), flags the requester bouncing, and the log says so with office and ticket."""
    pipe.process(fetched(make_mail("rina@unair.example")[0]))
    ack = ack_of(engine, "rina@unair.example")
    assert pipe.process(fetched(dsn("rina@unair.example", ack.message_id))) is Outcome.FOLLOWUP
    (ticket,) = tickets(engine)
    with db.reading(engine) as s:
        bounce = s.execute(select(MessageRow).where(MessageRow.kind == "bounce")).scalar_one()
    assert bounce.ticket_id == ticket.id and ticket.message_count == 2
    found = flag(engine, "rina@unair.example")
    assert found is not None and found.flag == "bouncing" and found.ticket_id == ticket.id
    assert "5.1.1" in found.reason
    assert acks(engine) == 1
    (logged,) = [e for e in events if e["event"] == "address_flagged"]
    assert logged["office"] == "3514" and logged["ticket"] == ticket.ref and logged["mailbox"] == "INBOX"
    assert logged["address"] == "rina@unair.example" and logged["flag"] == "bouncing"


def test_bounce_without_our_message_id_flags_nobody(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A DSN that cites none of our Message-IDs (anyone can write one naming a requester) is
    recorded as an ignored report, on no ticket; the requester is not flagged."""
    pipe.process(fetched(make_mail("budi@kemenkeu.example")[0]))
    assert pipe.process(fetched(dsn("budi@kemenkeu.example", None))) is Outcome.RECORDED
    assert flag(engine, "budi@kemenkeu.example") is None
    (ignored,) = [e for e in events if e["event"] == "report_ignored"]
    assert "cites no Message-ID of ours" in str(ignored["reason"]) and ignored["office"] == "3514"
    with db.reading(engine) as s:
        bounce = s.execute(select(MessageRow).where(MessageRow.kind == "bounce")).scalar_one()
    assert bounce.ticket_id is None


def authenticated(settings: Settings, raw: bytes, domain: str) -> tuple[Settings, bytes]:
    """Settings whose office 3514 trusts mx.bps.go.id's Authentication-Results, and the report
    with that server's DKIM pass for `domain` on top."""
    office = settings.office("3514")
    staff = dataclasses.replace(office.staff, authserv_ids=("mx.bps.go.id",))
    office = dataclasses.replace(office, staff=staff)
    changed = dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )
    header = f"Authentication-Results: mx.bps.go.id; dkim=pass header.d={domain}\r\n".encode()
    return changed, header + raw


def test_authenticated_bounce_from_the_recipients_domain_flags_without_our_message_id(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A DSN citing none of our Message-IDs flags the address it names when the office's
    receiving server authenticated it for that address's own domain, not for another."""
    pipe = Pipeline(settings, engine, Renderer(), clock)
    for who in ("budi@kemenkeu.example", "sari@desa.example"):
        pipe.process(fetched(make_mail(who)[0]))
    trusting, raw = authenticated(settings, dsn("budi@kemenkeu.example", None), "mx.kemenkeu.example")
    raw = raw.replace(b"MAILER-DAEMON@mx.example.net", b"MAILER-DAEMON@mx.kemenkeu.example")
    pipe = Pipeline(trusting, engine, Renderer(), clock)
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    found = flag(engine, "budi@kemenkeu.example")
    assert found is not None and found.flag == "bouncing"
    _, elsewhere = authenticated(settings, dsn("sari@desa.example", None), "mx.example.net")
    assert pipe.process(fetched(elsewhere)) is Outcome.RECORDED
    assert flag(engine, "sari@desa.example") is None


def test_report_citing_our_ack_in_in_reply_to_flags_its_recipient_only(
    pipe: Pipeline, engine: Engine
) -> None:
    """A report that cites our ack only in its In-Reply-To counts; it flags that ack's
    recipient, never another address it names (Mallory citing his own ack naming Rina)."""
    pipe.process(fetched(make_mail("rina@unair.example")[0]))
    pipe.process(fetched(make_mail("mallory@evil.example", subject="Data lain")[0]))
    own_ack = ack_of(engine, "mallory@evil.example").message_id
    raw = arf("rina@unair.example", "made.up@evil.example").replace(
        b"MIME-Version", f"In-Reply-To: <{own_ack}>\r\nMIME-Version".encode(), 1
    )
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    assert flag(engine, "rina@unair.example") is None
    found = flag(engine, "mallory@evil.example")
    assert found is not None and found.flag == "complained"


def test_bounce_about_mail_we_never_sent_flags_nobody(pipe: Pipeline, engine: Engine) -> None:
    """Backscatter (a bounce of forged mail in our name) is recorded and flags nobody."""
    outcome = pipe.process(fetched(dsn("stranger@example.org", "forged.1@bps.go.id")))
    assert outcome is Outcome.RECORDED
    assert flag(engine, "stranger@example.org") is None
    assert tickets(engine) == []


def test_delay_notice_joins_the_ticket_without_a_flag(pipe: Pipeline, engine: Engine) -> None:
    """A DSN saying delivery is delayed (4.x.x) is kept on the ticket; the address is not flagged."""
    pipe.process(fetched(make_mail("siti@desa.example")[0]))
    ack = ack_of(engine, "siti@desa.example")
    raw = dsn("siti@desa.example", ack.message_id, action="delayed", status="4.4.1")
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    assert flag(engine, "siti@desa.example") is None


def test_bouncing_address_gets_no_ack_until_it_writes_again(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A new request whose acknowledgement would go to a bouncing address gets its ticket and
    no ack; when that address itself writes again its flag is lifted and it is acknowledged."""
    pipe.process(fetched(make_mail("rina@unair.example")[0]))
    pipe.process(fetched(dsn("rina@unair.example", ack_of(engine, "rina@unair.example").message_id)))
    via_reply_to, _ = make_mail(
        "sekretariat@unair.example", subject="Data IPM 2025", headers=(("Reply-To", "rina@unair.example"),)
    )
    assert pipe.process(fetched(via_reply_to)) is Outcome.TICKET_CREATED
    assert acks(engine, "rina@unair.example") == 1
    withheld = [e for e in events if e["event"] == "ack_withheld"]
    assert "rina@unair.example is bouncing" in str(withheld[0]["reason"])
    again, _ = make_mail("rina@unair.example", subject="Data inflasi 2025")
    assert pipe.process(fetched(again)) is Outcome.TICKET_CREATED
    assert flag(engine, "rina@unair.example") is None
    assert acks(engine, "rina@unair.example") == 2
    assert any(e["event"] == "address_unflagged" for e in events)


def test_complaint_flags_the_address_until_it_writes_again(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """An ARF complaint about our ack flags the address `complained`: mail naming it in
    Reply-To gets a ticket but no automatic mail, and a later bounce does not downgrade the
    flag; when the address itself writes again the flag is lifted and it is acknowledged."""
    pipe.process(fetched(make_mail("joko@mail.example")[0]))
    ack = ack_of(engine, "joko@mail.example")
    assert pipe.process(fetched(arf("joko@mail.example", ack.message_id))) is Outcome.FOLLOWUP
    via_reply_to = make_mail(
        "kantor@mail.example", subject="Data lain", headers=(("Reply-To", "joko@mail.example"),)
    )
    assert pipe.process(fetched(via_reply_to[0])) is Outcome.TICKET_CREATED
    pipe.process(fetched(dsn("joko@mail.example", ack.message_id)))
    found = flag(engine, "joko@mail.example")
    assert found is not None and found.flag == "complained"
    assert acks(engine, "joko@mail.example") == 1
    again = make_mail("joko@mail.example", subject="Data inflasi")[0]
    assert pipe.process(fetched(again)) is Outcome.TICKET_CREATED
    assert flag(engine, "joko@mail.example") is None
    assert acks(engine, "joko@mail.example") == 2
    assert [e["address"] for e in events if e["event"] == "address_unflagged"] == ["joko@mail.example"]


def test_acknowledgements_per_sender_are_limited_per_hour(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, events: list[dict[str, object]]
) -> None:
    """The 4th and 5th new request from one address within the hour open tickets but get no
    ack (logged with the reason); another address, and the same one an hour later, do."""
    for i in range(5):
        raw, _ = make_mail("robot@acme.example", subject=f"[ACME #{1000 + i}] We received your message")
        assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    assert len(tickets(engine)) == 5
    assert acks(engine, "robot@acme.example") == 3
    reasons = [str(e["reason"]) for e in events if e["event"] == "ack_withheld"]
    assert len(reasons) == 2 and all("limit reached: 3 ack" in r for r in reasons)
    pipe.process(fetched(make_mail("rina@example.com")[0]))
    assert acks(engine, "rina@example.com") == 1
    clock.advance(timedelta(hours=1, seconds=1))
    pipe.process(fetched(make_mail("robot@acme.example", subject="[ACME #2000] Received")[0]))
    assert acks(engine, "robot@acme.example") == 4


def test_acknowledgement_limit_is_per_office(pipe: Pipeline, engine: Engine) -> None:
    """Acks of one office do not count against another office's limit."""
    for i in range(3):
        pipe.process(fetched(make_mail("robot@acme.example", subject=f"Tiket {i}")[0]))
    raw, _ = make_mail("robot@acme.example", to="bps3571@bps.go.id", subject="Tiket lain")
    pipe.process(fetched(raw, office="3571"))
    with db.reading(engine) as s:
        kediri = s.execute(select(func.count()).select_from(OutboxRow).where(OutboxRow.office_code == "3571"))
        assert kediri.scalar_one() == 1


def test_configured_limit_is_used(settings: Settings, engine: Engine, clock: FrozenClock) -> None:
    """acknowledgement.max_per_sender_per_hour = 1: the second request in the hour gets no ack."""
    ack_settings = dataclasses.replace(settings.acknowledgement, max_per_sender_per_hour=1)
    pipe = Pipeline(dataclasses.replace(settings, acknowledgement=ack_settings), engine, Renderer(), clock)
    for subject in ("Satu", "Dua"):
        pipe.process(fetched(make_mail("rina@example.com", subject=subject)[0]))
    assert acks(engine) == 1


def test_limit_counts_acks_in_the_same_batch(pipe: Pipeline, engine: Engine) -> None:
    """Five requests of one sender committed together in one batch still get three acks."""
    batch = [fetched(make_mail("robot@acme.example", subject=f"Nomor {i}")[0]) for i in range(5)]
    assert pipe.process_batch(batch) == [Outcome.TICKET_CREATED] * 5
    assert acks(engine) == 3


def test_x_loop_of_our_office_is_recorded_only(pipe: Pipeline, engine: Engine) -> None:
    """A mail carrying X-Loop: <our office> (our own mail, come back) is recorded, not ticketed."""
    raw, _ = make_mail("rina@example.com", headers=(("X-Loop", OFFICE),))
    assert pipe.process(fetched(raw)) is Outcome.RECORDED
    assert tickets(engine) == [] and acks(engine) == 0


def test_guard_refuses_office_addresses_and_flagged_addresses(engine: Engine, clock: FrozenClock) -> None:
    """The reusable check for automatic mail: office addresses, unusable and flagged addresses
    are refused with a reason, others pass."""
    own = {OFFICE}
    with db.transaction(engine) as s:
        flags.flag_address(s, "3514", "gone@example.org", "bouncing", clock.now(), "dsn failed 5.1.1", None)
        assert guard.refusal(s, "3514", "rina@example.com", own) == ""
        assert "office address" in guard.refusal(s, "3514", OFFICE, own)
        assert "no outside address" in guard.refusal(s, "3514", "not an address", own)
        assert "bouncing" in guard.refusal(s, "3514", "gone@example.org", own)
        assert guard.refusal(s, "3571", "gone@example.org", own) == ""  # flags are per office


def test_flags_and_limit_on_postgresql(postgres: Settings, clock: FrozenClock) -> None:
    """On PostgreSQL too: a bounce of our ack flags the address on its ticket, and the fourth
    request of one sender in the hour gets no ack."""
    engine = open_database(postgres, clock)
    try:
        pipe = Pipeline(postgres, engine, Renderer(), clock)
        pipe.process(fetched(make_mail("rina@unair.example")[0]))
        assert pipe.process(
            fetched(dsn("rina@unair.example", ack_of(engine, "rina@unair.example").message_id))
        ) is (Outcome.FOLLOWUP)
        found = flag(engine, "rina@unair.example")
        assert found is not None and found.flag == "bouncing"
        for i in range(4):
            pipe.process(fetched(make_mail("robot@acme.example", subject=f"Nomor {i}")[0]))
        assert acks(engine, "robot@acme.example") == 3
    finally:
        engine.dispose()


def test_suppressed_auto_response_opens_a_ticket_and_says_why(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A person's mail asking for no automatic reply (X-Auto-Response-Suppress: All) opens its
    ticket, gets no ack, and the log says why."""
    raw, _ = make_mail("rina@example.com", headers=(("X-Auto-Response-Suppress", "All"),))
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    assert acks(engine) == 0
    (withheld,) = [e for e in events if e["event"] == "ack_withheld"]
    assert (
        "X-Auto-Response-Suppress" in str(withheld["reason"]) and withheld["ticket"] == "PST-3514-2026-00001"
    )


def test_spam_opens_a_closed_ticket_without_ack_or_head_mail(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A mail the server's filter marked as spam (X-Spam-Flag: YES), even in complaint words:
    its ticket opens closed as spam with the reason in its history, no ack, nothing to the head."""
    raw, _ = make_mail(
        "winner@lottery.example",
        subject="Pengaduan: klaim hadiah Anda",
        body="Saya ingin mengadukan pelayanan. Klik tautan untuk hadiah.",
        headers=(("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=14.2 required=5.0")),
    )
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    (ticket,) = tickets(engine)
    assert (ticket.state, ticket.resolution, ticket.kind) == ("closed", "spam", "request")
    assert ticket.closed_at is not None
    assert acks(engine) == 0
    with db.reading(engine) as s:
        (event,) = s.execute(select(TicketEvent)).scalars()
        assert (event.event, event.state, event.actor) == ("closed", "closed", "spam filter")
        assert "X-Spam-Flag: YES" in event.detail
    (withheld,) = [e for e in events if e["event"] == "ack_withheld"]
    assert "spam filter" in str(withheld["reason"])


def test_person_writing_again_reopens_a_ticket_closed_as_spam(pipe: Pipeline, engine: Engine) -> None:
    """A false positive: the person's next mail in the conversation (not marked) reopens the
    ticket with a fresh clock, and staff see it in the open queue."""
    raw, mid = make_mail("rina@example.com", headers=(("X-Spam-Flag", "YES"),))
    pipe.process(fetched(raw))
    reply, _ = make_mail(
        "rina@example.com",
        subject="Re: Permohonan data",
        body="Mohon tanggapannya, email saya sebelumnya belum dijawab.",
        headers=(("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>")),
    )
    assert pipe.process(fetched(reply)) is Outcome.FOLLOWUP
    (ticket,) = tickets(engine)
    assert ticket.state == "open"
