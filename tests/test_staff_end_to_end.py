"""Officers answering from their own mail clients, on the real loopback stack: an answer saved in
the office account's Sent folder, an answer from an officer's own address with the office in Cc,
and a command word sent only to the office."""

from __future__ import annotations

import email
from email import policy

import pytest

from mailer.settings import Settings
from tests import mailstack
from tests.conftest import make_mail, one_pass, only_ticket, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"


def request_with_ack(settings: Settings) -> tuple[str, str, str]:
    """A requester's mail through Postfix, the daemon run: returns (requester, request
    Message-ID, acknowledgement Message-ID)."""
    who = requester()
    raw, mid = make_mail(who)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings)
    ((ack_raw, _),) = mailstack.wait_for(who, 1)
    ack = email.message_from_bytes(ack_raw, policy=policy.default)
    return who, mid, str(ack["Message-ID"]).strip("<>")


def thunderbird_reply(
    sender: str, to: str, cc: str, subject: str, body: str, parent: str
) -> tuple[bytes, str]:
    return make_mail(
        sender,
        to=to,
        subject=subject,
        body=body,
        name="Dewi Lestari",
        headers=(
            ("Cc", cc),
            ("In-Reply-To", f"<{parent}>"),
            ("References", f"<{parent}>"),
            ("User-Agent", "Mozilla Thunderbird"),
        )
        if cc
        else (("In-Reply-To", f"<{parent}>"), ("References", f"<{parent}>"), ("User-Agent", "Thunderbird")),
    )


def test_answer_in_sent_folder_answers_the_ticket(settings: Settings) -> None:
    """An officer answering from the shared office account (the client saves the answer in the
    folder flagged \\Sent) stops the clock, with the first response recorded."""
    who, mid, _ = request_with_ack(settings)
    raw, _ = thunderbird_reply(OFFICE, who, "", "Re: Permohonan data", "Data terlampir.", mid)
    mailstack.send(raw, OFFICE, [who])
    mailstack.append(OFFICE, raw, folder="Sent", flags=(b"\\Seen",))
    one_pass(settings)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.first_response_by) == ("answered", OFFICE)
    assert ticket.first_response_at is not None
    assert len(mailstack.wait_for(who, 2)) == 2  # the ack and the answer: nothing more from us


def test_officer_answer_with_office_in_cc(settings: Settings) -> None:
    """An officer answering from their own address with the office in Cc answers the ticket;
    the office copy stays unread, and the requester has the ack and the answer only."""
    who, _, ack_mid = request_with_ack(settings)
    officer = "dewi.pst@bps.go.id"
    raw, _ = thunderbird_reply(officer, who, OFFICE, "Re: Permohonan data [PST]", "Berikut datanya.", ack_mid)
    mailstack.send(raw, officer, [who, OFFICE])
    mailstack.wait_for(OFFICE, 2)
    one_pass(settings)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.first_response_by, ticket.last_officer) == ("answered", officer, officer)
    assert len(mailstack.wait_for(who, 2)) == 2
    assert all(b"\\Seen" not in flags for _, flags in mailstack.fetch_all(OFFICE))


def test_command_to_office_closes_without_requester_seeing_it(settings: Settings) -> None:
    """ "#selesai" in a reply an officer sends only to the office closes the ticket; the
    requester's mailbox holds the acknowledgement alone."""
    who, mid, _ = request_with_ack(settings)
    officer = "dewi.pst@bps.go.id"
    raw, _ = thunderbird_reply(officer, OFFICE, "", "Re: Permohonan data", "#selesai dijawab via WA", mid)
    mailstack.send(raw, officer, [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    one_pass(settings)
    ticket = only_ticket(settings)
    assert (ticket.state, ticket.resolution) == ("closed", "closed")
    assert len(mailstack.fetch_all(who)) == 1
