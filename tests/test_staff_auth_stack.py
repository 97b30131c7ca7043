"""Officers' commands with `require_authentication = true` (as shipped), on the real loopback
stack: a forged `#tutup` through Postfix — from a bps.go.id address, from the office's own
address, with an Authentication-Results header of another server or below the office server's
own — leaves the ticket open and brings the staff address one mail saying why; a command saved
in the office account's Sent folder still works. The loopback Postfix writes no
Authentication-Results of its own: where a test needs the office server's verdict, the mail
carries it on top, where that server would have written it."""

from __future__ import annotations

import dataclasses
import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage

import pytest

from mailer.clock import FrozenClock
from mailer.settings import Settings, StaffSettings
from tests import mailstack
from tests.conftest import make_mail, one_pass, only_ticket, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
AUTHSERV = "mx.bps.go.id"
OURS_FAIL = f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=bps.go.id"
OURS_PASS = f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=bps.go.id"
FOREIGN_PASS = "Authentication-Results: mx.evil.example; dmarc=pass header.from=bps.go.id"


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The tests' settings with office 3514 requiring authenticated staff mail, as shipped."""
    office = settings.office("3514")
    required = StaffSettings(office.staff.addresses, office.staff.domains, True, (AUTHSERV,))
    office = dataclasses.replace(office, staff=required)
    return dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def open_ticket(settings: Settings, clock: FrozenClock) -> tuple[str, str, str]:
    """A requester's mail through Postfix and one pass: (requester, request Message-ID, ref)."""
    who = requester()
    raw, mid = make_mail(who)
    mailstack.send(raw, who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(settings, clock)
    mailstack.wait_for(who, 1)
    return who, mid, only_ticket(settings).ref


def command(sender: str, ref: str, mid: str, above: tuple[str, ...] = ()) -> bytes:
    """`#tutup REF` replying to the request, sent only to the office; `above`: header lines
    on top of the mail (Authentication-Results)."""
    raw, _ = make_mail(
        sender,
        to=OFFICE,
        subject=f"Re: Permohonan data #tutup {ref}",
        body=f"#tutup {ref}\r\nSudah dijawab lewat telepon.",
        name="Dewi",
        headers=(("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>")),
    )
    return b"".join(f"{line}\r\n".encode() for line in above) + raw


def refusals(address: str) -> list[EmailMessage]:
    return [
        m
        for raw, _ in mailstack.fetch_all(address)
        if "tidak dijalankan" in str((m := parsed(raw))["Subject"])
    ]


@pytest.mark.parametrize(
    "above",
    [(), (FOREIGN_PASS,), (OURS_FAIL, OURS_PASS)],
    ids=["no-authentication-results", "another-servers-pass", "pass-below-our-servers-fail"],
)
def test_forged_staff_command_is_refused_and_the_officer_told(
    strict: Settings, clock: FrozenClock, above: tuple[str, ...], events: list[dict[str, object]]
) -> None:
    """A `#tutup` from a bps.go.id address without the office server's pass (none, another
    server's, or a pass below its fail) leaves the ticket open; the officer's mailbox gets one
    mail saying the command was not carried out and how to do it; the requester nothing more."""
    mailstack.clear(OFFICER)
    who, mid, ref = open_ticket(strict, clock)
    mailstack.send(command(OFFICER, ref, mid, above), OFFICER, [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    clock.advance(timedelta(minutes=5))
    one_pass(strict, clock)
    ticket = only_ticket(strict)
    assert (ticket.state, ticket.resolution, ticket.first_response_at) == ("open", "", None)
    (told,) = refusals(OFFICER)
    assert told["Subject"] == f"Perintah #tutup tidak dijalankan: {ref}"
    assert told["From"].addresses[0].addr_spec == OFFICE
    text = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "tidak dapat dipastikan berasal dari kantor" in text and "folder Terkirim" in text
    assert len(mailstack.fetch_all(who)) == 1  # the acknowledgement alone
    (event,) = [e for e in events if e["event"] == "staff_command_refused"]
    assert (event["office"], event["mailbox"], event["ticket"]) == ("3514", "INBOX", ref)


def test_forged_command_from_the_office_address_is_refused(strict: Settings, clock: FrozenClock) -> None:
    """A `#tutup` forged with the office's own From leaves the ticket open; the why-mail lands in
    the office mailbox and, read back, is known as our own: nothing more is sent."""
    _, mid, ref = open_ticket(strict, clock)
    mailstack.send(command(OFFICE, ref, mid), OFFICE, [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    clock.advance(timedelta(minutes=5))
    one_pass(strict, clock)
    assert only_ticket(strict).state == "open"
    mailstack.wait_for(OFFICE, 3)
    (told,) = refusals(OFFICE)
    assert told["To"] == OFFICE and told["Subject"] == f"Perintah #tutup tidak dijalankan: {ref}"
    clock.advance(timedelta(minutes=5))
    report = one_pass(strict, clock)
    assert report.fetched["3514"]["recorded"] == 1  # our own mail, come back
    assert len(mailstack.fetch_all(OFFICE)) == 3 and only_ticket(strict).state == "open"


def test_a_second_forged_command_within_the_hour_is_not_answered(
    strict: Settings, clock: FrozenClock
) -> None:
    """Two forged commands from one address within the hour: one mail to it."""
    mailstack.clear(OFFICER)
    _, mid, ref = open_ticket(strict, clock)
    for _ in range(2):
        mailstack.send(command(OFFICER, ref, mid), OFFICER, [OFFICE])
    mailstack.wait_for(OFFICE, 3)
    clock.advance(timedelta(minutes=5))
    one_pass(strict, clock)
    assert len(mailstack.fetch_all(OFFICER)) == 1 and only_ticket(strict).state == "open"


def test_command_with_the_office_servers_pass_is_obeyed(strict: Settings, clock: FrozenClock) -> None:
    """The office server's DMARC pass on top: the same `#tutup` closes the ticket and nobody is
    told anything (the refusals above are for want of it)."""
    mailstack.clear(OFFICER)
    _, mid, ref = open_ticket(strict, clock)
    mailstack.send(command(OFFICER, ref, mid, (OURS_PASS,)), OFFICER, [OFFICE])
    mailstack.wait_for(OFFICE, 2)
    one_pass(strict, clock)
    assert (only_ticket(strict).state, mailstack.fetch_all(OFFICER)) == ("closed", [])


def test_command_from_the_sent_folder_still_works(strict: Settings, clock: FrozenClock) -> None:
    """A `#tutup` an officer sent from the office account (its copy in the Sent folder, no
    Authentication-Results at all) closes the ticket; nobody is told anything."""
    _, mid, ref = open_ticket(strict, clock)
    mailstack.append(OFFICE, command(OFFICE, ref, mid), folder="Sent", flags=(b"\\Seen",))
    one_pass(strict, clock)
    ticket = only_ticket(strict)
    assert (ticket.state, ticket.resolution) == ("closed", "closed")
    assert refusals(OFFICE) == []
