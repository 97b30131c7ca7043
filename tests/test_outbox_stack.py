"""What the outbox no longer sends, and when it sends, on the real loopback stack with a
controllable clock: an acknowledgement queued before a bounce flagged its address, or before an
officer marked its ticket #spam, later in the same backlog, is suppressed (nothing reaches the
requester's Dovecot mailbox, `mailer show` says why); an acknowledgement of mail that came hours
ago waits out the night; Outlook's Thread-Index is continued in the acknowledgement."""

from __future__ import annotations

import base64
import dataclasses
import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import FrozenClock
from mailer.decide.threader import filetime
from mailer.settings import Settings
from storage import db
from storage.tables import MessageRow, OutboxRow
from tests import mailstack
from tests.conftest import make_mail, one_pass, requester
from tests.test_loops import authenticated, dsn
from tests.test_loops_stack import run_cli
from tests.test_staff_end_to_end import thunderbird_reply

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"  # Pasuruan, WIB (UTC+7)
OFFICER = "dewi.pst@bps.go.id"
WIB = timedelta(hours=7)


def wib(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Pasuruan, as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - WIB


def acks(settings: Settings) -> dict[str, OutboxRow]:
    """{recipient: outbox row} of the acknowledgements queued."""
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        rows = s.execute(
            select(OutboxRow)
            .join(MessageRow, MessageRow.id == OutboxRow.message_pk)
            .where(MessageRow.kind == "ack")
        ).scalars()
        found = {row.envelope_to: row for row in rows}
        for row in found.values():
            s.expunge(row)
    engine.dispose()
    return found


def deliver(raw: bytes, sender: str, expect: int) -> None:
    mailstack.send(raw, sender, [OFFICE])
    mailstack.wait_for(OFFICE, expect)


def test_ack_to_an_address_a_later_bounce_flags_is_suppressed(
    settings: Settings,
    events: list[dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One backlog: a request, then an authenticated bounce naming its writer's address. The ack
    queued for the request is suppressed when the sender takes it (the flag came after it was
    queued): it never reaches the requester, while another requester's ack of the same pass
    does; the log and `mailer show` say why."""
    clock = FrozenClock(wib(2026, 11, 23, 9))
    flagged, other = requester(), requester()
    deliver(make_mail(flagged)[0], flagged, 1)
    deliver(make_mail(other, subject="Data PDRB 2024")[0], other, 2)
    # the ack is not sent yet, so no bounce can cite it: one that the office's receiving server
    # authenticated for the requester's own domain counts, matched to our mail by its recipient
    raw = dsn(flagged, None).replace(b"MAILER-DAEMON@mx.example.net", b"MAILER-DAEMON@mx.example.com")
    settings, raw = authenticated(settings, raw, "example.com")
    deliver(raw, "", 3)
    report = one_pass(settings, clock)
    assert report.sent["3514"] == {"sent": 1, "suppressed": 1}
    mailstack.wait_for(other, 1)  # the sender ran and Postfix delivered what it was given
    assert mailstack.fetch_all(flagged) == []
    rows = acks(settings)
    assert rows[flagged].state == "suppressed" and "recipient is bouncing" in rows[flagged].last_error
    assert rows[other].state == "sent"
    (logged,) = [e for e in events if e["event"] == "mail_suppressed"]
    assert (logged["office"], logged["mailbox"], logged["to"]) == ("3514", OFFICE, flagged)
    assert str(logged["ticket"]).startswith("PST-3514-")
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)  # a later pass sends it neither
    assert acks(settings)[flagged].state == "suppressed"
    capsys.readouterr()
    assert run_cli(settings, monkeypatch, tmp_path, "show", str(logged["ticket"])) == 0
    assert "[suppressed, recipient is bouncing" in capsys.readouterr().out
    assert mailstack.fetch_all(flagged) == []


def test_ack_of_a_ticket_marked_spam_later_in_the_backlog_is_suppressed(
    settings: Settings, events: list[dict[str, object]]
) -> None:
    """One backlog: a request, then an officer's "#spam" about it sent only to the office. The
    ack is suppressed at send time with the ticket's resolution as the reason; nothing reaches
    the requester."""
    clock = FrozenClock(wib(2026, 11, 23, 9))
    who = requester()
    raw, mid = make_mail(who, subject="Promo pinjaman cepat")
    deliver(raw, who, 1)
    command, _ = thunderbird_reply(OFFICER, OFFICE, "", "Re: Promo pinjaman cepat", "#spam iklan", mid)
    deliver(command, OFFICER, 2)
    report = one_pass(settings, clock)
    assert report.sent["3514"] == {"suppressed": 1}
    row = acks(settings)[who]
    assert row.state == "suppressed" and "settled as spam" in row.last_error
    assert [e["to"] for e in events if e["event"] == "mail_suppressed"] == [who]
    assert mailstack.fetch_all(who) == []


def append_received(raw: bytes, at: datetime) -> None:
    """Put a mail in the office INBOX as if the server had received it at `at` (INTERNALDATE)."""
    with mailstack.imap(OFFICE) as client:
        client.append("INBOX", raw, msg_time=at)


def test_ack_of_mail_from_the_evening_read_at_3am_waits_until_6am(
    settings: Settings, events: list[dict[str, object]]
) -> None:
    """The daemon comes back at 03:00 WIB to a request that arrived at 19:00: its ack is queued
    held until the quiet hours end, nothing is sent at 03:00 or 05:59, and it reaches the
    requester at 06:00, dated 06:00. A request that arrived at 02:58 is answered at once, night or not."""
    who, fresh = requester(), requester()
    append_received(make_mail(who, date=wib(2026, 11, 23, 19))[0], wib(2026, 11, 23, 19))
    late = wib(2026, 11, 24, 2, 58)
    append_received(make_mail(fresh, subject="Data IPM", date=late)[0], late)
    clock = FrozenClock(wib(2026, 11, 24, 3))
    assert one_pass(settings, clock).sent["3514"] == {"sent": 1}
    mailstack.wait_for(fresh, 1)
    held = acks(settings)[who]
    assert held.state == "pending" and held.next_attempt_at == wib(2026, 11, 24, 6)
    (created,) = [e for e in events if e["event"] == "ticket_created" and e.get("ack_held_until")]
    assert created["ack_held_until"] == "2026-11-24T06:00+07:00"
    clock.set(wib(2026, 11, 24, 5, 59))
    assert one_pass(settings, clock).sent["3514"] == {}
    assert mailstack.fetch_all(who) == []
    clock.set(wib(2026, 11, 24, 6))
    assert one_pass(settings, clock).sent["3514"] == {"sent": 1}
    ((raw, _),) = mailstack.wait_for(who, 1)
    assert email.message_from_bytes(raw)["Auto-Submitted"] == "auto-replied"
    assert email.message_from_bytes(raw)["Date"] == "Tue, 24 Nov 2026 06:00:00 +0700"  # not 03:00


def test_ack_queued_at_night_but_not_sent_in_time_is_held_by_the_sender(
    settings: Settings, events: list[dict[str, object]]
) -> None:
    """An ack queued at 20:50 for mail of 20:45 (immediate) that the sender only gets to at
    22:30 (the SMTP server was away) is not sent then: the sender holds it until 06:00."""
    who = requester()
    append_received(make_mail(who, date=wib(2026, 11, 23, 20, 45))[0], wib(2026, 11, 23, 20, 45))
    clock = FrozenClock(wib(2026, 11, 23, 20, 50))
    quiet = dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, enabled=False))
    one_pass(quiet, clock)
    assert acks(settings)[who].next_attempt_at == wib(2026, 11, 23, 20, 50)  # due at once
    clock.set(wib(2026, 11, 23, 22, 30))
    assert one_pass(settings, clock).sent["3514"] == {"held": 1}
    assert acks(settings)[who].next_attempt_at == wib(2026, 11, 24, 6)
    assert [e["until"] for e in events if e["event"] == "mail_held"] == ["2026-11-24T06:00+07:00"]
    assert mailstack.fetch_all(who) == []
    clock.set(wib(2026, 11, 24, 6))
    assert one_pass(settings, clock).sent["3514"] == {"sent": 1}
    mailstack.wait_for(who, 1)


def test_ack_continues_outlooks_thread_index(settings: Settings) -> None:
    """A request from Outlook (Thread-Index, Thread-Topic) gets an ack whose Thread-Index is a
    child of it: the request's bytes and one 5-byte response level (27 bytes), Thread-Topic
    kept. A request without a Thread-Index gets an ack without one."""
    clock = FrozenClock(wib(2026, 11, 23, 9))
    outlook, gmail = requester(), requester()
    parent = bytes([1]) + (filetime(wib(2026, 11, 23, 8, 55)) >> 24).to_bytes(5, "big") + bytes(range(16))
    headers = (("Thread-Topic", "Data kemiskinan"), ("Thread-Index", base64.b64encode(parent).decode()))
    deliver(make_mail(outlook, subject="Data kemiskinan", headers=headers)[0], outlook, 1)
    deliver(make_mail(gmail)[0], gmail, 2)
    one_pass(settings, clock)
    ((raw, _),) = mailstack.wait_for(outlook, 1)
    ack = email.message_from_bytes(raw, policy=policy.default)
    child = base64.b64decode(str(ack["Thread-Index"]), validate=True)
    assert len(child) == 27 and child[:22] == parent
    assert ack["Thread-Topic"] == "Data kemiskinan"
    ((raw, _),) = mailstack.wait_for(gmail, 1)
    plain = email.message_from_bytes(raw, policy=policy.default)
    assert plain["Thread-Index"] is None and plain["Thread-Topic"] is None
