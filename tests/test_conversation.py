"""Conversations that go on after the first mail: a complaint made in a follow-up, our own mail
found again in the office's Sent folder, an officer's answer stored before the request it
answers. The detection as pure tables of cases, the rest through the pipeline on a real SQLite
database, without mail servers (tests/test_conversation_stack.py runs them on the stack)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.decide import complaint
from mailer.delivery.render import Renderer
from mailer.model import Address, FetchedMail, Outcome, ParsedMail, Role
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import cursors, db, flags, tickets
from storage.tables import EarlyAnswer, MessageRow, Ticket, TicketEvent
from tests.conftest import make_mail

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
RINA = "rina@example.com"
HEAD = "kepala3514@bps.go.id"
COMPLAINT = "Saya ingin menyampaikan pengaduan: sudah 5 hari data belum dikirim.\r\n\r\nRina"


def with_head(settings: Settings, **changes: object) -> Settings:
    office = dataclasses.replace(settings.office("3514"), head=HEAD, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(
        settings, offices=tuple(office if o.code == "3514" else o for o in settings.offices)
    )


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(with_head(settings), engine, Renderer(), clock)


def fetched(raw: bytes, role: Role = Role.INBOX, at: datetime | None = None) -> FetchedMail:
    return FetchedMail("3514", "INBOX" if role is Role.INBOX else "Sent", 7, next(_uids), raw, at, role)


def the_ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def messages(engine: Engine, kind: str | None = None) -> list[MessageRow]:
    with db.reading(engine) as s:
        query = select(MessageRow).order_by(MessageRow.id)  # type: ignore[arg-type]
        rows = [m for m in s.execute(query).scalars() if kind is None or m.kind == kind]
        for row in rows:
            s.expunge(row)
        return rows


def events(engine: Engine) -> list[tuple[str, str]]:
    with db.reading(engine) as s:
        return [(e.event, e.state) for e in s.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]


def request_and_ack(pipe: Pipeline) -> tuple[str, MessageRow]:
    """Rina's request (Mon 09:00 WIB), acknowledged: returns (its Message-ID, the ack row)."""
    raw, mid = make_mail(RINA)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    (ack,) = messages(pipe.engine, "ack")
    return mid, ack


def follow_up(pipe: Pipeline, ack: MessageRow, body: str, hours: float = 1) -> Outcome:
    """Rina replies to the acknowledgement `hours` later."""
    assert isinstance(pipe.clock, FrozenClock)
    pipe.clock.advance(timedelta(hours=hours))
    headers = (("In-Reply-To", f"<{ack.message_id}>"), ("References", f"<{ack.message_id}>"))
    raw, _ = make_mail(RINA, subject=ack.subject, body=body, headers=headers)
    return pipe.process(fetched(raw, at=pipe.clock.now()))


# --- the detection on follow-ups ----------------------------------------------------------------


def reply(body: str) -> ParsedMail:
    subject = "Re: Permohonan data jumlah penduduk miskin 2024 [PST-3514-2026-00001]"
    return ParsedMail("x@y", subject, Address("Rina", RINA), to=(Address("", OFFICE),), text=body)


@pytest.fixture
def ack_text(pipe: Pipeline) -> str:
    """The acknowledgement as the requester received it (it names the complaint channels)."""
    _, ack = request_and_ack(pipe)
    assert "Pengaduan layanan dapat disampaikan melalui" in ack.body_text
    return ack.body_text


@pytest.mark.parametrize(
    ("written", "quoted", "is_complaint"),
    [
        (COMPLAINT, "", True),
        ("Saya mau komplain, sudah seminggu belum ada kabar.", "", True),
        ("Baik, terima kasih. Data sudah saya terima.", "pasted", False),
        ("Baik, terima kasih. Data sudah saya terima.", "marked", False),
        ("Saya mengeluhkan pelayanan PST: email saya tidak dibalas petugas.", "pasted", True),
        (COMPLAINT, "marked", True),
        ("Mohon juga data jumlah pengaduan per kecamatan.", "pasted", False),
    ],
)  # fmt: skip
def test_follow_up_complaint_rule(ack_text: str, written: str, quoted: str, is_complaint: bool) -> None:
    """A follow-up is read on what the person wrote: a complaint in it counts, our
    acknowledgement's "Pengaduan layanan dapat disampaikan melalui …" quoted under it (with or
    without quote marks) never does."""
    if quoted == "pasted":  # a client that quotes without marks or a header line
        body = f"{written}\n\n{ack_text}"
    elif quoted == "marked":
        body = f"{written}\n\nPada Sen, 23 Nov 2026 09.00, PST <{OFFICE}> menulis:\n" + "".join(
            f"> {line}\n" for line in ack_text.splitlines()
        )
    else:
        body = written
    assert bool(complaint.reason(reply(body), (), [ack_text])) is is_complaint


# --- a complaint in a conversation --------------------------------------------------------------


def test_complaint_in_conversation_makes_the_ticket_a_complaint_once(pipe: Pipeline, engine: Engine) -> None:
    """A reply that complains turns the request into a complaint: event `complaint`, the complaint
    acknowledgement to the requester and the notice to the head, each once; a second complaint
    in the same ticket sends nothing more."""
    _, ack = request_and_ack(pipe)
    assert follow_up(pipe, ack, COMPLAINT) is Outcome.FOLLOWUP
    ticket = the_ticket(engine)
    assert ticket.kind == "complaint"
    assert events(engine) == [("complaint", "open")]
    _, complaint_ack = messages(engine, "ack")
    assert "Pengaduan Anda atas layanan kami telah kami terima" in complaint_ack.body_text
    assert ticket.ref in complaint_ack.subject and complaint_ack.to_emails == RINA
    (notice,) = messages(engine, "complaint_notice")
    assert notice.to_emails == HEAD
    assert "dalam percakapan tiket" in notice.body_text and "belum dikirim" in notice.body_text
    assert follow_up(pipe, ack, "Saya mau komplain lagi: pelayanan PST sangat lambat.") is Outcome.FOLLOWUP
    assert len(messages(engine, "ack")) == 2 and len(messages(engine, "complaint_notice")) == 1
    assert events(engine) == [("complaint", "open")]


def test_reply_quoting_our_ack_stays_a_request(pipe: Pipeline, engine: Engine, ack_text: str) -> None:
    """A reply that pastes our acknowledgement (complaint channels and all) without quote marks
    is an ordinary follow-up: no complaint, no second acknowledgement, nothing to the head."""
    (ack,) = messages(engine, "ack")
    assert (
        follow_up(pipe, ack, f"Baik, terima kasih. Saya tunggu datanya.\r\n\r\n{ack_text}")
        is Outcome.FOLLOWUP
    )
    assert the_ticket(engine).kind == "request"
    assert len(messages(engine, "ack")) == 1 and messages(engine, "complaint_notice") == []


def test_complaint_after_an_answer_counts_the_complaint_promise_from_that_mail(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """After an officer's answer, a complaint reopens the ticket with the complaint's own
    promise (5 working days here) counted from the complaint."""
    pipe = Pipeline(with_head(settings, complaint_sla_working_days=5), engine, Renderer(), clock)
    mid, ack = request_and_ack(pipe)
    headers = (("In-Reply-To", f"<{mid}>"), ("Cc", OFFICE))
    raw, _ = make_mail(
        OFFICER, to=RINA, subject="Re: Permohonan data", body="Data terlampir.", headers=headers
    )
    pipe.process(fetched(raw))
    follow_up(pipe, ack, "Saya komplain: data yang dikirim petugas salah tahun.", hours=24)
    ticket = the_ticket(engine)  # the complaint: Tue 24 Nov 09:00 WIB
    assert (ticket.kind, ticket.state) == ("complaint", "open")
    assert ticket.due_at == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 5 working days: Tue 1 Dec 09:00 WIB
    assert events(engine) == [("answered", "answered"), ("replied", "open"), ("complaint", "open")]


def test_complaint_never_moves_a_deadline_later(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """A complaint about a request still open keeps the request's deadline when it is earlier
    than the complaint's promise would be: a late request stays late."""
    pipe = Pipeline(with_head(settings, complaint_sla_working_days=5), engine, Renderer(), clock)
    _, ack = request_and_ack(pipe)
    due = the_ticket(engine).due_at
    follow_up(pipe, ack, COMPLAINT, hours=24)
    ticket = the_ticket(engine)
    assert (ticket.kind, ticket.due_at) == ("complaint", due)


def test_complaint_from_a_flagged_address_is_recorded_without_ack(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, events: list[dict[str, object]]
) -> None:
    """An address that complained about our mail (ARF) gets no complaint acknowledgement when
    another's mail names it (Reply-To; her own mail would lift the flag); the ticket still
    becomes a complaint and the head still hears of it."""
    _, ack = request_and_ack(pipe)
    with db.transaction(engine) as s:
        flags.flag_address(s, "3514", RINA, "complained", clock.now(), "ARF report", None)
    headers = (("In-Reply-To", f"<{ack.message_id}>"), ("Reply-To", RINA))
    raw, _ = make_mail("sekretariat@example.com", subject=ack.subject, body=COMPLAINT, headers=headers)
    clock.advance(timedelta(hours=1))
    pipe.process(fetched(raw, at=clock.now()))
    assert the_ticket(engine).kind == "complaint"
    assert len(messages(engine, "ack")) == 1 and len(messages(engine, "complaint_notice")) == 1
    (withheld,) = [e for e in events if e["event"] == "ack_withheld"]
    assert "complained" in str(withheld["reason"]) and str(withheld["ticket"]).startswith("PST-3514-")


def test_complaint_acknowledgements_keep_the_per_sender_limit(
    settings: Settings, engine: Engine, clock: FrozenClock
) -> None:
    """The complaint acknowledgement counts against `acknowledgement.max_per_sender_per_hour`
    like any: at the limit, the ticket becomes a complaint without one."""
    limited = dataclasses.replace(
        settings, acknowledgement=dataclasses.replace(settings.acknowledgement, max_per_sender_per_hour=1)
    )
    pipe = Pipeline(with_head(limited), engine, Renderer(), clock)
    _, ack = request_and_ack(pipe)
    follow_up(pipe, ack, COMPLAINT, hours=0.5)
    assert the_ticket(engine).kind == "complaint"
    assert len(messages(engine, "ack")) == 1


# --- our own mail in the Sent folder ------------------------------------------------------------


def test_our_ack_in_the_sent_folder_is_skipped(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """The server's copy of our acknowledgement in the Sent folder is known already: no second
    message, no answer (the ticket stays open, no first response), the cursor moves on."""
    _, ack = request_and_ack(pipe)
    before = len(messages(engine))
    copy = fetched(ack.raw, Role.SENT)
    assert pipe.process(copy) is Outcome.DUPLICATE
    ticket = the_ticket(engine)
    assert (ticket.state, ticket.first_response_at, ticket.message_count) == ("open", None, 1)
    assert len(messages(engine)) == before
    with db.reading(engine) as s:
        assert cursors.get_cursor(s, "3514", "Sent") == (7, copy.uid)
    (skipped,) = [e for e in events if e["event"] == "own_mail_skipped"]
    assert skipped["ticket"] == ticket.ref and "our own ack" in str(skipped["reason"])


def test_our_mail_header_in_the_sent_folder_is_skipped(pipe: Pipeline, engine: Engine) -> None:
    """A mail of ours the database does not know (another installation's, say) is still ours by
    its X-PST-Mailer header: not taken for an officer's answer."""
    mid, _ = request_and_ack(pipe)
    headers = (("In-Reply-To", f"<{mid}>"), ("X-PST-Mailer", "pst-mailer"))
    raw, _ = make_mail(OFFICE, to=RINA, subject="Re: Permohonan data", body="Tanda terima.", headers=headers)
    assert pipe.process(fetched(raw, Role.SENT)) is Outcome.DUPLICATE
    assert the_ticket(engine).state == "open"
    assert messages(engine, "own") == []


# --- an answer stored before its request --------------------------------------------------------


def test_answer_read_before_its_request_joins_the_new_ticket(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """An officer's answer found in the Sent folder before its request reached a ticket joins
    the ticket the request opens: answered, first response at the answer's time, and no
    acknowledgement (it would promise an answer the person already has)."""
    request_at = clock.now()  # Mon 09:00 WIB, in the INBOX after its pass
    answer_at = request_at + timedelta(minutes=30)
    raw_request, mid = make_mail(RINA)
    headers = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    raw_answer, _ = make_mail(
        OFFICE, to=RINA, subject="Re: Permohonan data", body="Data terlampir.", headers=headers
    )
    clock.advance(timedelta(minutes=35))
    assert pipe.process(fetched(raw_answer, Role.SENT, at=answer_at)) is Outcome.RECORDED
    with db.reading(engine) as s:
        assert len(s.execute(select(EarlyAnswer)).all()) == 1  # In-Reply-To and References: one ID
    assert pipe.process(fetched(raw_request, at=request_at)) is Outcome.TICKET_CREATED
    ticket = the_ticket(engine)
    assert (ticket.state, ticket.first_response_at, ticket.first_response_by) == (
        "answered",
        answer_at,
        OFFICE,
    )
    (answer,) = messages(engine, "staff_answer")
    assert answer.ticket_id == ticket.id and ticket.message_count == 2
    assert events(engine) == [("answered", "answered")]
    with db.reading(engine) as s:
        assert s.execute(select(EarlyAnswer)).all() == []
    assert messages(engine, "ack") == []  # a promise to answer, after the answer: not sent


def test_new_ticket_takes_only_answers_that_cite_it(pipe: Pipeline, engine: Engine) -> None:
    """An unlinked officer's mail citing another Message-ID stays where it is: the new ticket
    is open."""
    headers = (("In-Reply-To", "<other@mail.example.com>"),)
    raw, _ = make_mail(OFFICE, to="budi@example.com", subject="Re: Rapat", body="Baik.", headers=headers)
    assert pipe.process(fetched(raw, Role.SENT)) is Outcome.RECORDED
    raw, _ = make_mail(RINA)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    assert the_ticket(engine).state == "open"
    (answer,) = messages(engine, "staff_answer")
    assert answer.ticket_id is None
