"""Loops and bounces end to end on the real loopback stack: Postfix bounces an acknowledgement
for real and the daemon flags the address; a running daemon faces a badly behaved
auto-responder, and another office's daemon, over real IMAP and SMTP, and the exchange stops."""

from __future__ import annotations

import dataclasses
import email
import smtplib
import threading
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select

from mailer.operator import cli
from mailer.settings import Settings
from storage import db, flags
from storage.tables import MessageRow, OutboxRow
from tests import mailstack
from tests.conftest import ROOT, make_mail, office_env, project_settings, requester, running
from tests.test_end_to_end import deliver, run_once, tickets

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
BOUNCED = "bounced@fault.example"  # scripts/mailstack.sh: accepted, then bounced by Postfix


def count_out(settings: Settings) -> int:
    with db.reading(db.make_engine(settings.database_url)) as s:
        return int(s.execute(select(func.count()).select_from(OutboxRow)).scalar_one())


def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> int:
    """`mailer --settings FILE ARGS…` on the shipped settings with this test's database."""
    path = tmp_path / "cli-settings.toml"
    database = settings.database_url.removeprefix("sqlite:///")
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    path.write_text(text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{database}"'), encoding="utf-8")
    for key, value in office_env().items():
        monkeypatch.setenv(key, value)
    saved = structlog.get_config()  # the CLI sets logging up for itself, on this test's stderr
    try:
        return cli.main(["--settings", str(path), *args])
    finally:
        structlog.configure(**saved)


def test_real_bounce_of_an_ack_flags_the_requester(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Postfix accepts our ack to bounced@fault.example, then bounces it to the office mailbox;
    the next pass joins that bounce to the ticket, flags the address, and staff see it in
    `mailer show` and `mailer tickets`; a later request answered to it gets no ack."""
    deliver(make_mail(BOUNCED)[0], BOUNCED)
    first = run_once(settings)
    assert first.sent["3514"]["sent"] == 1
    (_request, (bounce_raw, _)) = mailstack.wait_for(OFFICE, 2, timeout=30)
    bounce = email.message_from_bytes(bounce_raw)
    assert bounce.get_content_type() == "multipart/report"  # a real RFC 3464 DSN from Postfix
    run_once(settings)
    (ticket,) = tickets(settings)
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        kinds = [
            m.kind for m in s.execute(select(MessageRow).where(MessageRow.ticket_id == ticket.id)).scalars()
        ]
        flag = flags.address_flag(s, "3514", BOUNCED)
    assert kinds == ["request", "ack", "bounce"]
    assert flag is not None and flag.flag == "bouncing" and "5.1.1" in flag.reason
    capsys.readouterr()
    assert run_cli(settings, monkeypatch, tmp_path, "show", ticket.ref) == 0
    shown = capsys.readouterr().out
    assert f"!! {BOUNCED} is BOUNCING" in shown and "<- bounce" in shown
    assert run_cli(settings, monkeypatch, tmp_path, "tickets") == 0
    assert f"{BOUNCED} [BOUNCING]" in capsys.readouterr().out
    colleague = f"kolega.{uuid.uuid4().hex[:6]}@fault.example"  # a Reply-To on From's domain is followed
    again, _ = make_mail(colleague, subject="Data lain", headers=(("Reply-To", BOUNCED),))
    deliver(again, colleague, expect=3)
    run_once(settings)
    assert len(tickets(settings)) == 2
    assert count_out(settings) == 1  # no second mail towards the bouncing address


class BadAutoResponder:
    """A helpdesk robot that answers every mail in its INBOX with a new ticket number, a fresh
    subject, no In-Reply-To and no Auto-Submitted (as badly behaved ones do), over real IMAP
    and SMTP. Counts what it answered."""

    def __init__(self, address: str) -> None:
        self.address, self.answered = address, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> BadAutoResponder:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        seen: set[int] = set()
        with mailstack.imap(self.address) as client:
            client.select_folder("INBOX", readonly=True)
            while not self._stop.is_set():
                client.noop()
                new = [uid for uid in client.search("ALL") if uid not in seen]
                for uid, data in client.fetch(new, ["BODY.PEEK[HEADER]"]).items() if new else ():
                    seen.add(uid)
                    headers = email.message_from_bytes(data[b"BODY[HEADER]"])
                    self._answer(parseaddr(headers["From"])[1])
                time.sleep(0.1)

    def _answer(self, to: str) -> None:
        self.answered += 1
        number = 4000 + self.answered
        raw = "\r\n".join(
            [
                f"From: {formataddr(('ACME Support', self.address))}",
                f"To: {to}",
                f"Subject: [ACME #{number}] We received your message",
                f"Date: {format_datetime(datetime.now(UTC))}",
                f"Message-ID: <{uuid.uuid4().hex}@acme.example>",
                "Content-Type: text/plain; charset=utf-8",
                "",
                f"Thank you for contacting ACME support. Your request number is {number}.",
                "",
            ]
        ).encode()
        with smtplib.SMTP(mailstack.STACK.host, mailstack.STACK.smtp_port, timeout=10) as smtp:
            smtp.sendmail(self.address, [to], raw)


def wait_quiet(addresses: list[str], quiet_s: float = 4.0, timeout_s: float = 60.0) -> list[int]:
    """Wait until none of these INBOXes changed for `quiet_s`; returns their message counts."""
    deadline, last, since = time.monotonic() + timeout_s, [-1] * len(addresses), time.monotonic()
    while time.monotonic() < deadline:
        counts = [len(mailstack.fetch_all(a)) for a in addresses]
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return counts
        time.sleep(0.25)
    raise TimeoutError(
        f"still exchanging mail after {timeout_s:g}s: {dict(zip(addresses, last, strict=True))}"
    )


def test_bad_auto_responder_loop_stops_at_the_ack_limit(
    settings: Settings, events: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A running daemon and an auto-responder that answers everything with a new subject and no
    Auto-Submitted: the responder's mail keeps opening tickets, but after 3 acks in the hour
    the daemon sends no more, and the exchange stops (4 mails in, 3 acks out)."""
    robot = f"robot.{uuid.uuid4().hex[:8]}@acme.example"
    with running(settings), BadAutoResponder(robot) as responder:
        responder._answer(OFFICE)  # the robot starts it, as if answering someone's mail
        office_in, robot_in = wait_quiet([OFFICE, robot])
    assert (office_in, robot_in) == (4, 3)
    assert responder.answered == 4
    assert len(tickets(settings)) == 4
    withheld = [e for e in events if e["event"] == "ack_withheld"]
    assert len(withheld) == 1 and "limit reached" in str(withheld[0]["reason"])
    with capsys.disabled():
        print(f"\n  loop with a bad auto-responder: {office_in} mails in, {robot_in} acks out, then quiet")


def test_two_office_daemons_at_each_other_stop_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two desks' daemons (Pasuruan's and Kediri's, separate databases): a mail from Kediri's
    mailbox to Pasuruan's is acknowledged once; Kediri's daemon records that acknowledgement
    as its own kind of mail (X-PST-Mailer; also X-Loop, Auto-Submitted, a pst. Message-ID in
    bps.go.id) without answering, and nothing more is exchanged."""
    base = project_settings(tmp_path)
    pasuruan = dataclasses.replace(project_settings(tmp_path / "a"), offices=(base.office("3514"),))
    kediri = dataclasses.replace(project_settings(tmp_path / "b"), offices=(base.office("3571"),))
    kediri_box = "bps3571@bps.go.id"
    with running(pasuruan), running(kediri):
        raw, _ = make_mail(kediri_box, name="BPS Kota Kediri", subject="Koordinasi data Susenas")
        mailstack.send(raw, kediri_box, [OFFICE])
        office_in, kediri_in = wait_quiet([OFFICE, kediri_box])
    assert (office_in, kediri_in) == (1, 1)
    assert count_out(pasuruan) == 1 and count_out(kediri) == 0
    with db.reading(db.make_engine(kediri.database_url)) as s:
        (kind,) = s.execute(select(MessageRow.kind)).scalars()
    assert kind == "own"
    with capsys.disabled():
        print(f"\n  two office daemons: {office_in} mail in, {kediri_in} ack out, then quiet")


def test_mail_marked_spam_by_the_server_gets_no_ack(settings: Settings) -> None:
    """Through Postfix and Dovecot: a mail carrying the spam filter's X-Spam-Flag: YES gets no
    acknowledgement (its ticket opens closed as spam), while a plain request sent with it gets
    its ack; the office mailbox still holds both."""
    forged, person = requester(), requester()
    deliver(make_mail(forged, headers=(("X-Spam-Flag", "YES"),))[0], forged)
    deliver(make_mail(person)[0], person, expect=2)
    run_once(settings)
    mailstack.wait_for(person, 1)
    assert mailstack.fetch_all(forged) == []
    assert count_out(settings) == 1
    states = sorted((t.requester_email == forged, t.state, t.resolution) for t in tickets(settings))
    assert states == [(False, "open", ""), (True, "closed", "spam")]
    assert len(mailstack.fetch_all(OFFICE)) == 2
