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
    with db.reading(engine) as s:
        kinds = [s.get(MessageRow, row.message_pk).kind for row in outbox_to(engine, OFFICER)]  # type: ignore[union-attr]
    assert "command_refused" not in kinds  # (a stranger's mail: it may open a linked ticket, acknowledged)


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


# --- an authenticated officer's command that cannot be carried out (issue 15, item 5) ----------


@pytest.fixture
def open_pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    """Office 3514 taking bps.go.id staff mail on its From (the loopback stack's settings)."""
    return Pipeline(settings, engine, Renderer(), clock)


def refusal_text(engine: Engine, to: str) -> tuple[str, str, str]:
    """(subject, text, html) of the one command_refused mail to `to`."""
    (row,) = [r for r in outbox_to(engine, to)]
    with db.reading(engine) as s:
        out = s.get(MessageRow, row.message_pk)
        assert out is not None and out.kind == "command_refused"
        mail = email.message_from_bytes(out.raw, policy=policy.default)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return str(mail["Subject"]), text, html


def test_a_command_also_sent_to_the_requester_is_not_obeyed_and_the_officer_told(
    open_pipe: Pipeline, engine: Engine
) -> None:
    """`#tutup` in an answer with Rina in To: the answer counts, the ticket stays unclosed, and
    the officer learns the command needs a mail to the office alone."""
    mid, ref = request(open_pipe, engine)
    open_pipe.process(fetched(forged(OFFICER, "#tutup\nBerikut datanya.", mid, to=RINA)))
    assert the_ticket(engine).state == "answered"
    subject, text, _ = refusal_text(engine, OFFICER)
    assert subject == f"Perintah #tutup tidak dijalankan: {ref}"
    assert RINA in text and f"hanya kepada {OFFICE}" in text


def test_an_unknown_command_word_is_kept_as_a_note_and_the_known_ones_listed(
    open_pipe: Pipeline, engine: Engine
) -> None:
    """`#tutp` to the office: the ticket unchanged, the officer told it is no command, with the list."""
    mid, _ = request(open_pipe, engine)
    open_pipe.process(fetched(forged(OFFICER, "#tutp", mid)))
    assert (the_ticket(engine).state, the_ticket(engine).resolution) != ("closed", "closed")
    _, text, _ = refusal_text(engine, OFFICER)
    assert "#tutp bukan perintah yang dikenal" in text and "#selesai, #tutup" in text


def test_a_command_naming_no_ticket_opens_none_and_says_so(open_pipe: Pipeline, engine: Engine) -> None:
    """`#tutup PST-3514-2026-99999` in a new mail: no ticket opened for the officer, no
    acknowledgement to the officer, and a reply saying that ticket does not exist."""
    raw, _ = make_mail(OFFICER, to=OFFICE, subject="#tutup PST-3514-2026-99999", body="Sudah selesai.")
    open_pipe.process(fetched(raw))
    with db.reading(engine) as s:
        assert tickets.list_tickets(s) == []
    _, text, _ = refusal_text(engine, OFFICER)
    assert "tidak ada tiket PST-3514-2026-99999 di kantor ini" in text


def test_what_came_from_the_mail_is_escaped_in_the_html_part(open_pipe: Pipeline, engine: Engine) -> None:
    """An outside address with markup in the refusal's detail is escaped in HTML, plain in text."""
    mid, _ = request(open_pipe, engine)
    odd = '"<b>x</b>"@example.org'
    open_pipe.process(fetched(forged(OFFICER, "#tutup\nData terlampir.", mid, to=odd)))
    _, _, html = refusal_text(engine, OFFICER)
    assert "<b>x</b>" not in html and "&lt;b&gt;" in html


def test_confirmation_of_a_command_only_when_the_office_asks_for_it(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """With staff.confirm_commands the officer gets "telah dijalankan: tiket ditutup" after
    #tutup; without it nothing (refusals aside)."""
    plain = Pipeline(settings, engine, Renderer(), clock)
    mid, ref = request(plain, engine)
    plain.process(fetched(forged(OFFICER, "#tunggu", mid)))
    assert outbox_to(engine, OFFICER) == []
    office = settings.office("3514")
    confirming = dataclasses.replace(office, staff=dataclasses.replace(office.staff, confirm_commands=True))
    asked = dataclasses.replace(
        settings, offices=tuple(confirming if o.code == "3514" else o for o in settings.offices)
    )
    Pipeline(asked, engine, Renderer(), clock).process(fetched(forged(OFFICER, "#tutup", mid)))
    (row,) = outbox_to(engine, OFFICER)
    with db.reading(engine) as s:
        out = s.get(MessageRow, row.message_pk)
        assert out is not None and out.kind == "command_done"
        assert f"#tutup untuk tiket {ref} telah dijalankan: tiket ditutup" in out.body_text
