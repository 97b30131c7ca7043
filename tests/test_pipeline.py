"""The per-mail pipeline on a real SQLite database, without mail servers."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.errors import ParseError
from mailer.model import FetchedMail, Outcome
from mailer.pipeline import driver as pipeline_module
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db, repo
from storage.tables import DeadLetter, MessageRow, OutboxRow, Ticket
from tests.conftest import make_mail

_uids = itertools.count(1)


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, office: str = "3514", uidvalidity: int = 7) -> FetchedMail:
    return FetchedMail(office, "INBOX", uidvalidity, next(_uids), raw)


def count(engine: Engine, table: type, **where: object) -> int:
    with db.reading(engine) as s:
        query = select(func.count()).select_from(table)
        for key, value in where.items():
            query = query.where(getattr(table, key) == value)
        return int(s.execute(query).scalar_one())


def test_new_request_creates_ticket_and_one_outbox_row(pipe: Pipeline, engine: Engine) -> None:
    """A person's first mail opens a ticket with an office-coded reference and queues one ack."""
    raw, _ = make_mail("rina@example.com")
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    with db.reading(engine) as s:
        (ticket,) = repo.list_tickets(s)
    assert ticket.ref == "PST-3514-2026-00001"
    assert ticket.requester_email == "rina@example.com"
    assert count(engine, OutboxRow, state="pending") == 1


def test_same_mail_twice_is_one_message(pipe: Pipeline, engine: Engine) -> None:
    """The same Message-ID fetched again (another UID, a resync) is recognised, not re-ticketed."""
    raw, _ = make_mail("rina@example.com")
    pipe.process(fetched(raw))
    assert pipe.process(fetched(raw, uidvalidity=8)) is Outcome.DUPLICATE
    assert count(engine, Ticket) == 1
    assert count(engine, OutboxRow) == 1


def test_mail_without_message_id_dedupes_by_content(pipe: Pipeline, engine: Engine) -> None:
    """A mail with no Message-ID is recognised again by its bytes."""
    raw, mid = make_mail("rina@example.com")
    raw = raw.replace(f"Message-ID: <{mid}>\r\n".encode(), b"")
    pipe.process(fetched(raw))
    assert pipe.process(fetched(raw)) is Outcome.DUPLICATE
    assert count(engine, Ticket) == 1


def test_reply_to_ack_joins_ticket_without_second_ack(pipe: Pipeline, engine: Engine) -> None:
    """A reply referencing our acknowledgement's Message-ID is a follow-up with no new ack."""
    raw, _ = make_mail("rina@example.com")
    pipe.process(fetched(raw))
    with db.reading(engine) as s:
        ack = s.execute(select(MessageRow).where(MessageRow.kind == "ack")).scalar_one()
    reply, _ = make_mail(
        "rina@example.com",
        subject="Re: something else entirely",
        headers=(("In-Reply-To", f"<{ack.message_id}>"), ("References", f"<{ack.message_id}>")),
    )
    assert pipe.process(fetched(reply)) is Outcome.FOLLOWUP
    assert count(engine, Ticket) == 1
    assert count(engine, OutboxRow) == 1
    assert count(engine, MessageRow, kind="followup") == 1


def test_subject_tag_joins_ticket(pipe: Pipeline, engine: Engine) -> None:
    """A reply that lost its References but kept [PST-…] in the subject joins the ticket."""
    raw, _ = make_mail("rina@example.com")
    pipe.process(fetched(raw))
    reply, _ = make_mail("rina@example.com", subject="Re: Permohonan data [PST-3514-2026-00001]")
    assert pipe.process(fetched(reply)) is Outcome.FOLLOWUP
    assert count(engine, OutboxRow) == 1


def test_tag_of_another_office_does_not_join(pipe: Pipeline, engine: Engine) -> None:
    """A Pasuruan tag in a mail to Kediri does not attach it to Pasuruan's ticket."""
    raw, _ = make_mail("rina@example.com")
    pipe.process(fetched(raw))
    other, _ = make_mail("rina@example.com", to="bps3571@bps.go.id", subject="Re: x [PST-3514-2026-00001]")
    assert pipe.process(fetched(other, office="3571")) is Outcome.TICKET_CREATED
    with db.reading(engine) as s:
        refs = sorted(t.ref for t in repo.list_tickets(s))
    assert refs == ["PST-3514-2026-00001", "PST-3571-2026-00001"]


@pytest.mark.parametrize(
    "headers",
    [
        (("Auto-Submitted", "auto-replied"),),
        (("Precedence", "bulk"),),
        (("List-Id", "<berita.example.com>"),),
        (("X-Autoreply", "yes"),),
    ],
)
def test_automatic_mail_is_recorded_without_ticket_or_ack(
    pipe: Pipeline, engine: Engine, headers: tuple[tuple[str, str], ...]
) -> None:
    """Auto-replies and list mail are stored, never ticketed, never acknowledged."""
    raw, _ = make_mail("robot@example.com", headers=headers)
    assert pipe.process(fetched(raw)) is Outcome.RECORDED
    assert count(engine, Ticket) == 0
    assert count(engine, OutboxRow) == 0
    assert count(engine, MessageRow) == 1


def test_failing_step_dead_letters_and_moves_cursor(
    pipe: Pipeline, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail that breaks a step is kept whole with the step and reason; the next mail goes on."""
    bad, _ = make_mail("a@example.com", subject="boom")
    good, _ = make_mail("b@example.com")
    real_parse = pipeline_module.parse

    def parse_or_fail(raw: bytes):  # type: ignore[no-untyped-def]
        if b"Subject: boom" in raw:
            raise ParseError("simulated parser failure")
        return real_parse(raw)

    monkeypatch.setattr(pipeline_module, "parse", parse_or_fail)
    first, second = fetched(bad), fetched(good)
    assert pipe.process(first) is Outcome.DEAD_LETTER
    assert pipe.process(second) is Outcome.TICKET_CREATED
    with db.reading(engine) as s:
        (dead,) = s.execute(select(DeadLetter)).scalars()
        assert repo.get_cursor(s, "3514", "INBOX") == (7, second.uid)
    assert dead.raw == bad
    assert dead.step == "parse"
    assert "simulated parser failure" in dead.error


def test_ack_never_goes_to_an_office_address(pipe: Pipeline, engine: Engine) -> None:
    """A mail from another office mailbox of this desk gets a ticket but no acknowledgement."""
    raw, _ = make_mail("bps3571@bps.go.id", name="BPS Kota Kediri")
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    assert count(engine, OutboxRow) == 0


def test_ticket_numbers_count_per_office(pipe: Pipeline, engine: Engine) -> None:
    """Each office numbers its own tickets from 00001."""
    for i in range(3):
        raw, _ = make_mail(f"p{i}@example.com")
        pipe.process(fetched(raw))
    raw, _ = make_mail("q@example.com", to="bps8205@bps.go.id")
    pipe.process(fetched(raw, office="8205"))
    with db.reading(engine) as s:
        refs = sorted(t.ref for t in repo.list_tickets(s))
    assert refs == [
        "PST-3514-2026-00001",
        "PST-3514-2026-00002",
        "PST-3514-2026-00003",
        "PST-8205-2026-00001",
    ]


def test_log_events_carry_office_mailbox_uid_message_and_ticket(
    pipe: Pipeline, events: list[dict[str, object]]
) -> None:
    """`ticket_created` names the office, mailbox, UID, Message-ID and ticket it is about."""
    raw, mid = make_mail("rina@example.com")
    mail = fetched(raw)
    pipe.process(mail)
    (created,) = [e for e in events if e["event"] == "ticket_created"]
    assert created["office"] == "3514"
    assert created["mailbox"] == "INBOX"
    assert created["uid"] == mail.uid
    assert created["message_id"] == mid
    assert created["ticket"] == "PST-3514-2026-00001"


def test_dead_letter_event_names_the_step_and_reason(
    pipe: Pipeline, events: list[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mail_dead_lettered` says which step failed and why."""

    def broken(*_args: object) -> None:
        raise ValueError("threader exploded")

    monkeypatch.setattr(pipeline_module, "find_ticket", broken)
    pipe.process(fetched(make_mail("rina@example.com")[0]))
    (dead,) = [e for e in events if e["event"] == "mail_dead_lettered"]
    assert dead["step"] == "thread"
    assert "threader exploded" in str(dead["error"])
    assert dead["office"] == "3514"


def test_batch_keeps_each_mail_atomic(
    pipe: Pipeline, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one commit of several mails, a failing mail is dead-lettered alone, the same mail
    twice is stored once, and the cursor ends on the last UID."""
    good1, _ = make_mail("a@example.com")
    bad, _ = make_mail("b@example.com", subject="boom")
    good2, _ = make_mail("c@example.com")
    real_store = pipeline_module.step_store

    def store_or_fail(p: Pipeline, ctx: pipeline_module.MailContext, s: object) -> None:
        real_store(p, ctx, s)  # type: ignore[arg-type]
        if ctx.mail.subject == "boom":
            raise RuntimeError("fails after writing")

    monkeypatch.setattr(
        pipeline_module,
        "IN_TX",
        tuple((name, store_or_fail if name == "store" else fn) for name, fn in pipeline_module.IN_TX),
    )
    batch = [fetched(good1), fetched(bad), fetched(good2), fetched(good2)]
    outcomes = pipe.process_batch(batch)
    assert outcomes == [
        Outcome.TICKET_CREATED,
        Outcome.DEAD_LETTER,
        Outcome.TICKET_CREATED,
        Outcome.DUPLICATE,
    ]
    assert count(engine, Ticket) == 2  # the failed mail's half-written ticket was rolled back
    assert count(engine, MessageRow, direction="in") == 2
    assert count(engine, DeadLetter) == 1
    with db.reading(engine) as s:
        assert repo.get_cursor(s, "3514", "INBOX") == (7, batch[-1].uid)


def test_reply_without_references_joins_by_sender_and_subject(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """A reply with no References and no tag (Outlook on the web) joins the sender's ticket
    with the same subject under a client prefix; no second acknowledgement."""
    raw, _ = make_mail("rina@example.com", subject="Data IPM 2024")
    pipe.process(fetched(raw))
    clock.advance(timedelta(days=3))
    reply, _ = make_mail("rina@example.com", subject="RE: Balas: Data IPM 2024")
    assert pipe.process(fetched(reply)) is Outcome.FOLLOWUP
    assert count(engine, Ticket) == 1
    assert count(engine, OutboxRow) == 1


def test_same_subject_from_another_sender_is_a_new_ticket(pipe: Pipeline, engine: Engine) -> None:
    """Two people asking under the same subject never share a ticket."""
    pipe.process(fetched(make_mail("rina@example.com", subject="Data IPM 2024")[0]))
    other = fetched(make_mail("budi@example.com", subject="Re: Data IPM 2024")[0])
    assert pipe.process(other) is Outcome.TICKET_CREATED
    assert count(engine, Ticket) == 2


def test_same_sender_and_subject_after_the_window_is_a_new_ticket(
    pipe: Pipeline, engine: Engine, clock: FrozenClock, settings: Settings
) -> None:
    """Past `threading.subject_window_days` of quiet, the same subject starts a new ticket."""
    pipe.process(fetched(make_mail("rina@example.com", subject="Data IPM 2024")[0]))
    clock.advance(timedelta(days=settings.threading.subject_window_days + 1))
    again = fetched(make_mail("rina@example.com", subject="Data IPM 2024")[0])
    assert pipe.process(again) is Outcome.TICKET_CREATED
    assert count(engine, Ticket) == 2


def test_mail_read_after_its_deadline_is_overdue_and_its_ack_promises_a_day_ahead(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """A request that reached the mailbox two weeks before the desk read it (the daemon was
    down): the ticket's deadline counts from its arrival (overdue, it escalates), but the ack
    never states a day already past: it apologises and promises 2 working days from now."""
    arrived = clock.now() - timedelta(days=14)  # Monday 9 November 09:00 WIB
    raw, _ = make_mail("rina@example.com")
    assert pipe.process(FetchedMail("3514", "INBOX", 7, 1, raw, arrived)) is Outcome.TICKET_CREATED
    with db.reading(engine) as s:
        (ticket,) = repo.list_tickets(s)
        ack = s.execute(select(MessageRow).where(MessageRow.kind == "ack")).scalar_one()
    assert ticket.received_at == arrived and ticket.due_at < clock.now()
    text = " ".join(ack.body_text.split())
    assert "Mohon maaf, email Anda baru dapat kami proses pada Senin, 23 November 2026." in text
    assert "paling lambat Rabu, 25 November 2026 pukul 09.00 WIB (2 hari kerja sejak email diproses)" in text
    assert "11 November" not in text
