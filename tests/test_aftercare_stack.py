"""The life of a consultation after the answer, on the real loopback stack with a controllable
clock: closing after 7 quiet days with the closing mail in the requester's Dovecot mailbox,
a rating by plain reply and by the closing mail's mailto: link (no reopening, no
acknowledgement), and a complaint routed to the head of office."""

from __future__ import annotations

import base64
import dataclasses
import email
import html as htmllib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from urllib.parse import parse_qs, urlsplit

import pytest

from mailer.clock import FrozenClock
from mailer.decide.threader import filetime
from mailer.settings import Settings
from storage import db, ratings
from storage.tables import Ticket
from tests import mailstack
from tests.conftest import make_mail, one_pass, only_ticket, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
HEAD = "kepala3514@bps.go.id"


def rating_of(settings: Settings, ticket: Ticket) -> tuple[int, str] | None:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        assert ticket.id is not None
        found = ratings.rating_of(s, ticket.id)
        result = (found.score, found.how) if found else None
    engine.dispose()
    return result


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def closed_after_seven_days(
    settings: Settings, clock: FrozenClock, request_headers: tuple[tuple[str, str], ...] = ()
) -> tuple[str, EmailMessage, str]:
    """A request, an officer's answer two hours later, then 7 quiet days: returns (requester,
    the closing mail as it landed in their Dovecot INBOX, the answer's Message-ID)."""
    who = requester()
    raw, mid = make_mail(who, subject="Permohonan data kemiskinan 2024", headers=request_headers)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    mailstack.wait_for(who, 1)  # the acknowledgement
    clock.advance(timedelta(hours=2))
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"), ("Cc", OFFICE))
    raw, answer_mid = make_mail(
        OFFICER,
        to=who,
        subject="Re: Permohonan data kemiskinan 2024",
        body="Data terlampir.",
        headers=headers,
    )
    mailstack.send(raw, OFFICER, [who, OFFICE])
    mailstack.wait_for(OFFICE, 2)
    one_pass(settings, clock)
    assert only_ticket(settings).state == "answered"
    clock.advance(timedelta(days=6, hours=23))
    assert one_pass(settings, clock).aftercare == {}
    clock.advance(timedelta(hours=1))
    assert one_pass(settings, clock).aftercare == {"closed": 1}
    box = mailstack.wait_for(who, 3)  # acknowledgement, the officer's answer, the closing mail
    return who, parsed(box[-1][0]), answer_mid


def test_closed_after_seven_quiet_days_with_closing_mail(settings: Settings, clock: FrozenClock) -> None:
    """7 days after the answer the ticket closes and the requester finds one closing mail in
    their mailbox, threaded under the answer, with the ticket tag and the rating links; a
    restarted daemon does not send it again."""
    who, closing, answer_mid = closed_after_seven_days(settings, clock)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.resolution) == ("closed", "answered")
    assert closing["In-Reply-To"] == f"<{answer_mid}>"
    assert f"[{ticket.ref}]" in closing["Subject"] and closing["X-PST-Mailer"]
    assert closing["Auto-Submitted"] == "auto-replied"
    assert closing["Thread-Index"] is None  # the request came without one
    html = closing.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html.count('href="mailto:bps3514@bps.go.id?subject=Penilaian') == 4
    clock.advance(timedelta(hours=1))
    one_pass(settings, clock)
    assert len(mailstack.fetch_all(who)) == 3


def test_closing_mail_continues_outlooks_thread_index(settings: Settings, clock: FrozenClock) -> None:
    """A request from Outlook: the closing mail a week later carries Thread-Topic and a
    Thread-Index that is a child of the request's (its 22 bytes, one 5-byte level)."""
    parent = bytes([1]) + (filetime(clock.now()) >> 24).to_bytes(5, "big") + bytes(range(16))
    headers = (
        ("Thread-Topic", "Permohonan data kemiskinan 2024"),
        ("Thread-Index", base64.b64encode(parent).decode()),
    )
    _who, closing, _ = closed_after_seven_days(settings, clock, headers)
    child = base64.b64decode(str(closing["Thread-Index"]), validate=True)
    assert len(child) == 27 and child[:22] == parent
    assert closing["Thread-Topic"] == "Permohonan data kemiskinan 2024"


def test_plain_reply_rates_without_reopening_or_ack(settings: Settings, clock: FrozenClock) -> None:
    """The requester answers the closing mail with "4": rating 4 recorded, the ticket stays
    closed, and no mail goes back to them."""
    who, closing, _ = closed_after_seven_days(settings, clock)
    clock.advance(timedelta(hours=1))
    raw, _ = make_mail(
        who, subject=f"Re: {closing['Subject']}", body="4\r\n\r\nTerima kasih.\r\n\r\n> Yth. Bapak/Ibu,",
        headers=(("In-Reply-To", closing["Message-ID"]), ("References", closing["Message-ID"])),
    )  # fmt: skip
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 3)
    report = one_pass(settings, clock)
    assert report.fetched["3514"]["followup"] == 1
    ticket = only_ticket(settings)
    assert ticket.state == "closed"
    assert rating_of(settings, ticket) == (4, "reply")
    assert len(mailstack.fetch_all(who)) == 3  # no acknowledgement, nothing else


def test_mailto_link_rates_without_reopening_or_ack(settings: Settings, clock: FrozenClock) -> None:
    """Clicking "2" in the closing mail opens a new mail to the office with the marker subject
    and body of the link (as a mail client does); sent, it records rating 2, reopens nothing and
    gets no answer."""
    who, closing, _ = closed_after_seven_days(settings, clock)
    html = closing.get_body(("html",)).get_content()  # type: ignore[union-attr]
    links = [htmllib.unescape(x) for x in re.findall(r'href="(mailto:[^"]+)"', html)]
    url = urlsplit(next(x for x in links if "%3A%202%20" in x))  # "…: 2 (Kurang puas)"
    fields = {k: v[0] for k, v in parse_qs(url.query).items()}
    message = EmailMessage()
    message["From"] = formataddr(("Warga", who))
    message["To"] = url.path
    message["Subject"] = fields["subject"]
    message["Date"] = email.utils.format_datetime(datetime(2026, 11, 30, 5, 0, tzinfo=UTC))
    message["Message-ID"] = email.utils.make_msgid(domain="mail.example.com")
    message.set_content(fields["body"])
    assert url.path == OFFICE and fields["subject"].startswith("Penilaian [PST-3514-2026-")
    mailstack.send(message.as_bytes(), who, [url.path])
    mailstack.wait_for(OFFICE, 3)
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert ticket.state == "closed"
    assert rating_of(settings, ticket) == (2, "mailto")
    assert len(mailstack.fetch_all(who)) == 3


def test_complaint_goes_to_the_head_of_office(settings: Settings, clock: FrozenClock) -> None:
    """A complaint: the requester gets the complaint acknowledgement and the head of office
    finds the complaint in their mailbox, Reply-To the requester and the office."""
    office = dataclasses.replace(settings.office("3514"), head=HEAD)
    settings = dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )
    mailstack.clear(HEAD)
    who = requester()
    raw, _ = make_mail(
        who, subject="Pengaduan: email tidak dibalas",
        body="Yth. PST,\r\n\r\nSudah dua minggu permintaan saya tidak ditanggapi petugas.\r\n\r\nRina",
    )  # fmt: skip
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert ticket.kind == "complaint"
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = parsed(ack_raw)
    assert "Pengaduan Anda atas layanan kami" in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    ((notice_raw, _),) = mailstack.wait_for(HEAD, 1)
    notice = parsed(notice_raw)
    assert notice["Subject"].startswith(f"Pengaduan layanan {ticket.ref}")
    assert notice["Reply-To"] == f"{who}, {OFFICE}"
    assert "tidak ditanggapi petugas" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
