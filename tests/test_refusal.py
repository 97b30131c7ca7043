"""A command from a staff-looking address that is not authenticated: not obeyed, the ticket
untouched, and the officer told why in one short mail to that address (at most one an hour,
never to a Reply-To or an outside address, held in the quiet hours like an acknowledgement).
On a real SQLite database, without mail servers (tests/test_staff_auth_stack.py: the real stack)."""

from __future__ import annotations

import dataclasses
import email
import itertools
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome, Role
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, StaffSettings
from storage import db, tickets
from storage.tables import MessageRow, OutboxRow, Ticket
from tests.conftest import make_mail

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
RINA = "rina@example.com"
AUTHSERV = "mx.bps.go.id"


def strict(settings: Settings) -> Settings:
    """Office 3514 requiring authenticated staff mail from bps.go.id, as shipped."""
    policy_ = StaffSettings(domains=("bps.go.id",), require_authentication=True, authserv_ids=(AUTHSERV,))
    offices = tuple(
        dataclasses.replace(o, staff=policy_) if o.code == "3514" else o for o in settings.offices
    )
    return dataclasses.replace(settings, offices=offices)


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(strict(settings), engine, Renderer(), clock)


def fetched(raw: bytes, at: datetime | None = None, role: Role = Role.INBOX) -> FetchedMail:
    return FetchedMail("3514", "INBOX" if role is Role.INBOX else "Sent", 7, next(_uids), raw, at, role)


def the_ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def outbox_to(engine: Engine, address: str) -> list[OutboxRow]:
    with db.reading(engine) as s:
        rows = list(s.execute(select(OutboxRow).where(OutboxRow.envelope_to == address)).scalars())
        for row in rows:
            s.expunge(row)
        return rows


def request(pipe: Pipeline, engine: Engine) -> tuple[str, str]:
    """Rina's request, stored: (its Message-ID, the ticket's reference)."""
    raw, mid = make_mail(RINA)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    return mid, the_ticket(engine).ref


def forged(
    sender: str, body: str, mid: str, headers: tuple[tuple[str, str], ...] = (), to: str = OFFICE
) -> bytes:
    raw, _ = make_mail(
        sender,
        to=to,
        subject="Re: Permohonan data",
        body=body,
        headers=(("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"), *headers),
    )
    return raw


def test_refused_command_leaves_the_ticket_and_tells_the_officer(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """`#tutup REF` from an unauthenticated bps.go.id address: recorded on no ticket, the ticket
    as it was, one Indonesian mail to that address naming the command and the ticket, and the
    event logged with office, mailbox and ticket."""
    mid, ref = request(pipe, engine)
    before = the_ticket(engine)
    assert pipe.process(fetched(forged(OFFICER, f"#tutup {ref}", mid))) is Outcome.RECORDED
    after = the_ticket(engine)
    assert (after.state, after.resolution, after.message_count) == ("open", "", before.message_count)
    (row,) = outbox_to(engine, OFFICER)
    with db.reading(engine) as s:
        kinds = {m.kind for m in s.execute(select(MessageRow)).scalars()}
        out = s.get(MessageRow, row.message_pk)
        assert out is not None and out.ticket_id is None
        mail = email.message_from_bytes(out.raw, policy=policy.default)
    assert {"unverified_command", "command_refused"} <= kinds
    assert str(mail["Subject"]) == f"Perintah #tutup tidak dijalankan: {ref}"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "tidak dapat dipastikan berasal dari kantor" in text and "folder" in text and OFFICE in text
    assert mail["Auto-Submitted"] == "auto-replied" and mail["In-Reply-To"]
    (event,) = [e for e in events if e["event"] == "staff_command_refused"]
    assert (event["office"], event["mailbox"], event["ticket"]) == ("3514", "INBOX", ref)
    assert event["command"] == "#tutup" and event["told"] is True


def test_at_most_one_refusal_an_hour_to_an_address(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """Three refused commands within the hour from one address: one mail; an hour later, another."""
    mid, ref = request(pipe, engine)
    for word in ("#tutup", "#spam", "#selesai"):
        pipe.process(fetched(forged(OFFICER, f"{word} {ref}", mid)))
        clock.advance(timedelta(minutes=10))
    assert len(outbox_to(engine, OFFICER)) == 1
    clock.advance(timedelta(minutes=35))
    pipe.process(fetched(forged(OFFICER, f"#duplikat {ref}", mid)))
    assert len(outbox_to(engine, OFFICER)) == 2
    assert (the_ticket(engine).state, the_ticket(engine).resolution) == ("open", "")


def test_refusal_never_goes_to_reply_to(pipe: Pipeline, engine: Engine) -> None:
    """A forged command with a Reply-To of a third party: the mail goes to the staff From only."""
    mid, ref = request(pipe, engine)
    victim = "korban@example.net"
    pipe.process(fetched(forged(OFFICER, f"#tutup {ref}", mid, headers=(("Reply-To", victim),))))
    assert outbox_to(engine, victim) == [] and len(outbox_to(engine, OFFICER)) == 1


def test_outside_sender_command_gets_no_refusal(pipe: Pipeline, engine: Engine) -> None:
    """`#tutup` from an address that is not the office's staff is a person's mail like any:
    no refusal mail, no officer command."""
    mid, ref = request(pipe, engine)
    pipe.process(fetched(forged("someone@example.org", f"#tutup {ref}", mid)))
    with db.reading(engine) as s:
        kinds = [m.kind for m in s.execute(select(MessageRow)).scalars()]
    assert "command_refused" not in kinds
    assert all(t.state == "open" for t in tickets_of(engine))


def tickets_of(engine: Engine) -> list[Ticket]:
    with db.reading(engine) as s:
        found = tickets.list_tickets(s)
        for t in found:
            s.expunge(t)
        return found


def test_unverified_mail_without_command_gets_no_refusal(pipe: Pipeline, engine: Engine) -> None:
    """A staff-looking answer without a command word is handled as before (an outside mail):
    no refusal mail is sent for it."""
    mid, _ = request(pipe, engine)
    raw, _ = make_mail(
        OFFICER, to=RINA, subject="Re: Permohonan data", body="Data terlampir.",
        headers=(("In-Reply-To", f"<{mid}>"), ("Cc", OFFICE)),
    )  # fmt: skip
    pipe.process(fetched(raw))
    assert outbox_to(engine, OFFICER) == []


def test_authenticated_command_is_obeyed_and_nobody_told(pipe: Pipeline, engine: Engine) -> None:
    """The office server's DMARC pass on top: `#tutup` closes the ticket, no refusal mail."""
    mid, ref = request(pipe, engine)
    raw = forged(OFFICER, f"#tutup {ref}", mid)
    raw = f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=bps.go.id\r\n".encode() + raw
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    assert (the_ticket(engine).state, outbox_to(engine, OFFICER)) == ("closed", [])


def test_refusal_waits_out_the_quiet_hours(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """A refused command read at 23:00 WIB, two hours after it came (the daemon was down): its
    mail waits for the end of the quiet hours."""
    mid, ref = request(pipe, engine)
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # 23:00 WIB
    pipe.process(fetched(forged(OFFICER, f"#tutup {ref}", mid), at=clock.now() - timedelta(hours=2)))
    (row,) = outbox_to(engine, OFFICER)
    assert row.next_attempt_at.replace(tzinfo=UTC) > clock.now() + timedelta(hours=6)
