"""Reminders, escalation and digests end to end on the real loopback Dovecot and Postfix, with a
frozen clock moved by hand: each notice and digest lands in its recipient's mailbox once, nothing
goes at night, and the reminder that lands in the office INBOX opens no ticket."""

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
from storage import db, repo
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
        tickets = repo.list_tickets(s)
    assert [(t.requester_email, t.state) for t in tickets] == [(who, "open")]
