"""Reminders, escalation and digests end to end on the real loopback Dovecot and Postfix, with a
frozen clock moved by hand: each notice and digest lands in its recipient's mailbox once, nothing
goes at night, and the reminder that lands in the office INBOX opens no ticket. A requester
writing again after the answer starts a second round of notices; a waiting pause does not."""

from __future__ import annotations

import asyncio
import email
import time
from datetime import datetime
from email import policy

import pytest

from mailer.clock import FrozenClock
from mailer.daemon import Daemon
from mailer.settings import Settings
from storage import db, tickets
from storage.sweeps import notices_of
from storage.tickets import list_tickets
from storage.vocabulary import NoticeLevel, TicketState
from tests import mailstack
from tests.conftest import make_mail, requester
from tests.test_escalate import MON, at

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
HEAD = "placeholder.kepala3514@bps.go.id"
JATIM = "placeholder.kepala.pst3500@bps.go.id"
NATIONAL = "placeholder.kepala.pst@bps.go.id"
MANAGERS = (HEAD, JATIM, NATIONAL, "placeholder.kepala3571@bps.go.id", "placeholder.kepala.pst8200@bps.go.id")


def run_at(settings: Settings, now: datetime) -> None:
    """One `mailer once` at `now`: fetch, sweep, send."""
    daemon = Daemon(settings, clock=FrozenClock(now))
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    assert report.errors == {}


def kinds(address: str) -> list[str]:
    """The X-PST-Notice of every mail in a mailbox ("" for mail that is no notice), in order."""
    found = []
    for raw, _ in mailstack.fetch_all(address):
        mail = email.message_from_bytes(raw, policy=policy.default)
        found.append(str(mail["X-PST-Notice"] or ""))
    return found


def settle() -> None:
    """Give Postfix time to deliver anything queued by mistake (for the checks that nothing came)."""
    time.sleep(1.5)


def test_reminder_escalations_and_digests_delivered_once_never_at_night(settings: Settings) -> None:
    """A request to Pasuruan on Monday 10:00 WIB, never answered: the staff reminder on Tuesday
    afternoon (into the office INBOX, read back as our own mail), nothing on Wednesday night,
    the head's notice and digests at 08:00 on Thursday, the province head on Friday, the national
    level a week later; running again at each moment sends nothing twice."""
    mailstack.clear(*MANAGERS)
    who = requester()
    raw, _ = make_mail(who, date=MON)
    with mailstack.imap(OFFICE) as client:
        client.append("INBOX", raw, msg_time=MON)  # INTERNALDATE: the SLA clock starts here
    run_at(settings, MON)
    mailstack.wait_for(who, 1)  # the acknowledgement

    run_at(settings, at("2026-11-24", "14:00"))
    mailstack.wait_for(OFFICE, 2)
    run_at(settings, at("2026-11-24", "14:05"))  # reads the reminder back: our own, no ticket
    assert kinds(OFFICE) == ["", "reminder"]

    run_at(settings, at("2026-11-25", "20:00"))  # past due, but at night
    run_at(settings, at("2026-11-26", "06:00"))
    settle()
    assert [kinds(m) for m in (HEAD, JATIM, NATIONAL)] == [[], [], []]

    run_at(settings, at("2026-11-26", "08:00"))
    run_at(settings, at("2026-11-26", "08:01"))
    mailstack.wait_for(HEAD, 2)
    mailstack.wait_for(NATIONAL, 1)
    run_at(settings, at("2026-11-27", "11:00"))  # Friday: province level, and Friday's digests
    mailstack.wait_for(JATIM, 3)
    run_at(settings, at("2026-12-02", "11:00"))  # Wednesday a week on: national
    run_at(settings, at("2026-12-02", "11:30"))
    mailstack.wait_for(NATIONAL, 4)
    settle()

    assert kinds(OFFICE) == ["", "reminder"]
    assert sorted(kinds(HEAD)) == ["digest", "digest", "digest", "office_head"]
    assert sorted(kinds(JATIM)) == ["digest", "digest", "digest", "province_head"]
    assert sorted(kinds(NATIONAL)) == ["digest", "digest", "digest", "national"]
    assert kinds("placeholder.kepala3571@bps.go.id") == []  # nothing to report: no digest
    assert kinds("placeholder.kepala.pst8200@bps.go.id") == []
    with db.reading(db.make_engine(settings.database_url)) as s:
        tickets = list_tickets(s)
    assert [(t.requester_email, t.state) for t in tickets] == [(who, TicketState.OPEN)]


def deliver(folder: str, when: datetime, sender: str, to: str, body: str, parent: str) -> str:
    """A mail stored in the office account's `folder` as received (INBOX) or sent (Sent) at
    `when` (its INTERNALDATE: the time the clock reads), replying to `parent`; its Message-ID."""
    headers = (("In-Reply-To", f"<{parent}>"), ("References", f"<{parent}>"))
    raw, mid = make_mail(sender, to=to, subject="Re: Permohonan data", body=body, headers=headers, date=when)
    with mailstack.imap(OFFICE) as client:
        client.append(folder, raw, flags=(b"\\Seen",) if folder == "Sent" else (), msg_time=when)
    return mid


def notices_in(address: str) -> list[tuple[str, str]]:
    """(X-PST-Notice, X-PST-Ticket) of every notice in a mailbox (digests and other mail left out)."""
    found = []
    for raw, _ in mailstack.fetch_all(address):
        mail = email.message_from_bytes(raw, policy=policy.default)
        if mail["X-PST-Notice"] and mail["X-PST-Notice"] != "digest":
            found.append((str(mail["X-PST-Notice"]), str(mail["X-PST-Ticket"])))
    return found


def repo_ref(settings: Settings) -> str:
    """The reference of the one ticket."""
    with db.reading(db.make_engine(settings.database_url)) as s:
        (ticket,) = tickets.list_tickets(s)
        return ticket.ref


def rounds(settings: Settings) -> tuple[int, list[tuple[int, str]]]:
    """The ticket's clock round and its notices as [(round, level name)]."""
    with db.reading(db.make_engine(settings.database_url)) as s:
        (ticket,) = tickets.list_tickets(s)
        assert ticket.id is not None
        sent = [(n.clock_round, NoticeLevel(n.level).label) for n in notices_of(s, ticket.id)]
        return ticket.clock_round, sent


def test_requester_writing_again_after_the_answer_gets_a_second_round_once(settings: Settings) -> None:
    """Monday's request gets its reminder and the head's notice; the office answers Wednesday
    noon from its Sent folder; Thursday 10:00 the requester asks again (a fresh clock, due Monday
    10:00) and nobody answers: the second reminder, due Friday noon, waits out Friday night and
    the weekend and comes Monday 08:00, the second head's notice at 11:00; once each."""
    mailstack.clear(HEAD)
    who = requester()
    raw, request_mid = make_mail(who, date=MON)
    with mailstack.imap(OFFICE) as client:
        client.append("INBOX", raw, msg_time=MON)
    run_at(settings, MON)
    mailstack.wait_for(who, 1)
    run_at(settings, at("2026-11-24", "14:00"))
    run_at(settings, at("2026-11-25", "11:00"))
    mailstack.wait_for(HEAD, 1)
    answer = deliver("Sent", at("2026-11-25", "12:00"), OFFICE, who, "Data terlampir.", request_mid)
    run_at(settings, at("2026-11-25", "12:05"))
    deliver("INBOX", at("2026-11-26", "10:00"), who, OFFICE, "Apakah ada juga data tahun 2023?", answer)
    run_at(settings, at("2026-11-26", "10:05"))
    assert rounds(settings)[0] == 2

    for night in (at("2026-11-27", "20:00"), at("2026-11-28", "10:00"), at("2026-11-30", "06:00")):
        run_at(settings, night)
    settle()
    assert len(notices_in(OFFICE)) == 1 and len(notices_in(HEAD)) == 1
    run_at(settings, at("2026-11-30", "08:00"))
    run_at(settings, at("2026-11-30", "08:05"))
    run_at(settings, at("2026-11-30", "11:00"))
    run_at(settings, at("2026-11-30", "11:30"))
    settle()

    ref = repo_ref(settings)
    assert notices_in(OFFICE) == [("reminder", ref), ("reminder", ref)]
    assert notices_in(HEAD) == [("office_head", ref), ("office_head", ref)]
    assert rounds(settings) == (2, [(1, "reminder"), (1, "office_head"), (2, "reminder"), (2, "office_head")])


def test_waiting_pause_starts_no_second_round(settings: Settings) -> None:
    """Reminded Tuesday, paused by #tunggu from 15:00 to the requester's answer Wednesday 10:00:
    the deadline moves to 12:30 and the head is told at 13:00, but the same clock reminds no
    second time."""
    mailstack.clear(HEAD)
    who = requester()
    raw, request_mid = make_mail(who, date=MON)
    with mailstack.imap(OFFICE) as client:
        client.append("INBOX", raw, msg_time=MON)
    run_at(settings, MON)
    mailstack.wait_for(who, 1)
    run_at(settings, at("2026-11-24", "14:00"))
    officer = "dewi.pst@bps.go.id"
    command = deliver("INBOX", at("2026-11-24", "15:00"), officer, OFFICE, "#tunggu", request_mid)
    run_at(settings, at("2026-11-24", "15:05"))
    deliver("INBOX", at("2026-11-25", "10:00"), who, OFFICE, "Tahunnya 2024, Bu.", command)
    for now in ("10:05", "11:00", "12:00", "13:00", "13:30"):
        run_at(settings, at("2026-11-25", now))
    settle()

    ref = repo_ref(settings)
    assert notices_in(OFFICE) == [("reminder", ref)]
    assert notices_in(HEAD) == [("office_head", ref)]
    assert rounds(settings) == (1, [(1, "reminder"), (1, "office_head")])
