"""Issue 12 on the real loopback stack (Dovecot + Postfix) with a controllable clock: an
officer's #selesai after an answer puts the rating request in the requester's mailbox, once;
and Tulang Bawang's acknowledgement states its standard's promise, whose full new period
starts when the requester answers a #tunggu."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest

from mailer.clock import FrozenClock
from mailer.settings import Settings
from tests import mailstack
from tests.conftest import make_mail, one_pass, only_ticket, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICER = "dewi.pst@bps.go.id"


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(raw: bytes) -> str:
    body = parsed(raw).get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


def test_officer_close_puts_one_rating_request_in_the_requesters_mailbox(
    settings: Settings, clock: FrozenClock
) -> None:
    """Request, an officer's answer, then #selesai to the office: the requester finds the closing
    mail with the rating links after the answer; a later pass, even 8 days on, sends no other."""
    office, who = "bps3514@bps.go.id", requester()
    raw, mid = make_mail(who, to=office, subject="Permohonan data kemiskinan 2024")
    mailstack.send(raw, who, [office])
    mailstack.wait_for(office, 1)
    one_pass(settings, clock)
    mailstack.wait_for(who, 1)  # the acknowledgement
    clock.advance(timedelta(hours=2))
    thread = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    raw, _ = make_mail(
        OFFICER, to=who, subject="Re: Permohonan data kemiskinan 2024", body="Data terlampir.",
        headers=(*thread, ("Cc", office)),
    )  # fmt: skip
    mailstack.send(raw, OFFICER, [who, office])
    mailstack.wait_for(office, 2)
    one_pass(settings, clock)
    assert only_ticket(settings).state == "answered"
    clock.advance(timedelta(minutes=30))
    raw, _ = make_mail(
        OFFICER, to=office, subject="Re: Permohonan data kemiskinan 2024", body="#selesai", headers=thread
    )
    mailstack.send(raw, OFFICER, [office])
    mailstack.wait_for(office, 3)
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.resolution) == ("closed", "closed")
    box = mailstack.wait_for(who, 3)  # acknowledgement, the officer's answer, the closing mail
    closing = parsed(box[-1][0])
    assert f"[{ticket.ref}]" in closing["Subject"] and closing["Auto-Submitted"] == "auto-replied"
    assert "karena layanan konsultasi telah selesai" in text_of(box[-1][0])
    html = closing.get_body(("html",))
    assert html is not None
    assert str(html.get_content()).count(f'href="mailto:{office}?subject=Penilaian') == 4
    clock.advance(timedelta(days=8))
    one_pass(settings, clock)
    assert len(mailstack.fetch_all(who)) == 3


def test_tulang_bawang_promise_and_full_new_period_after_a_wait(
    settings: Settings, clock: FrozenClock
) -> None:
    """Tulang Bawang's acknowledgement quotes its standard ("setelah permintaan jelas dan
    persyaratan pelayanan lengkap"); after #tunggu, the requester's clarification on Saturday
    starts a full new period: Monday is day 1, due Wednesday at closing."""
    office, who = "bps1808@bps.go.id", requester()
    raw, mid = make_mail(who, to=office, subject="Permohonan data PDRB 2024")
    mailstack.send(raw, who, [office])
    mailstack.wait_for(office, 1)
    one_pass(settings, clock)
    (ack,) = mailstack.wait_for(who, 1)
    words = "3 (tiga) hari kerja setelah permintaan jelas dan persyaratan pelayanan lengkap"
    assert f"pukul 09.00 WIB, yaitu {words}." in text_of(ack[0])
    clock.advance(timedelta(hours=1))
    thread = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    raw, _ = make_mail(
        OFFICER, to=office, subject="Re: Permohonan data PDRB 2024",
        body="#tunggu harga berlaku atau konstan?", headers=thread,
    )  # fmt: skip
    mailstack.send(raw, OFFICER, [office])
    mailstack.wait_for(office, 2)
    one_pass(settings, clock)
    assert only_ticket(settings).state == "waiting"
    clock.set(datetime(2026, 11, 28, 4, 0, tzinfo=UTC))  # Saturday 11:00 WIB
    raw, _ = make_mail(
        who, to=office, subject="Re: Permohonan data PDRB 2024", body="Harga berlaku saja.",
        headers=thread, date=clock.now(),
    )  # fmt: skip
    mailstack.send(raw, who, [office])
    mailstack.wait_for(office, 3)
    one_pass(settings, clock)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.clock_round) == ("open", 2)
    assert ticket.due_at == datetime(2026, 12, 2, 8, 30, tzinfo=UTC)  # Wednesday 15:30 WIB
