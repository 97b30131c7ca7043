"""Floods and reflection (issue 13): the pure decisions as tables of cases (where an
acknowledgement may go, whether an hourly limit is reached, a sender made safe for a digest
line), the settings, and the pipeline on a real SQLite database without mail servers
(tests/test_floods_stack.py runs the attack through Postfix and Dovecot)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.decide import floods
from mailer.decide.floods import Counts, Limits
from mailer.delivery.render import Renderer
from mailer.errors import ConfigError
from mailer.model import Address, FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, load_settings
from mailer.timed import digest, notify
from storage import db
from storage.tables import MessageRow, OutboxRow, Ticket, TicketEvent
from storage.tickets import list_tickets
from storage.vocabulary import WithheldEvent
from tests.conftest import make_mail, office_env
from tests.test_digest import HEAD_3514, compose
from tests.test_escalate import at
from tests.test_settings import PASSWORD, write_settings

_uids = itertools.count(1)
COMPLAINT = "Saya ingin menyampaikan pengaduan: sudah 5 hari data belum dikirim.\r\n\r\nBudi"


def a(email: str, name: str = "") -> Address:
    return Address(name, email)


# --- where an acknowledgement goes --------------------------------------------------------------

CHOICES = [
    pytest.param(a("budi@example.com"), (), "budi@example.com", (), id="from-alone"),
    pytest.param(
        a("budi@example.com"), (a("budi.kerja@example.com"),), "budi.kerja@example.com", (), id="same-domain"
    ),
    pytest.param(
        a("budi@example.com"),
        (a("victim@other.example"),),
        "budi@example.com",
        ("victim@other.example",),
        id="other-domain-ignored",
    ),
    pytest.param(
        a("budi@Example.COM"), (a("kerja@EXAMPLE.com"),), "kerja@EXAMPLE.com", (), id="domain-case-ignored"
    ),
    pytest.param(
        a("budi@example.com"),
        (a("budi@mail.example.com"),),
        "budi@example.com",
        ("budi@mail.example.com",),
        id="subdomain-is-another-domain",
    ),
    pytest.param(
        a("budi@mail.example.com"),
        (a("budi@example.com"),),
        "budi@mail.example.com",
        ("budi@example.com",),
        id="parent-domain-is-another-domain",
    ),
    pytest.param(
        a("budi@example.com"),
        (a("x@example.com.evil.example"),),
        "budi@example.com",
        ("x@example.com.evil.example",),
        id="lookalike-suffix",
    ),
    pytest.param(
        a("budi@bücher.example"),
        (a("kerja@xn--bcher-kva.example"),),
        "kerja@xn--bcher-kva.example",
        (),
        id="idn",
    ),
    pytest.param(
        a("budi@example.com"),
        (a("victim@other.example"), a("kerja@example.com"), a("dua@example.com")),
        "kerja@example.com",
        ("victim@other.example", "dua@example.com"),
        id="several-first-on-the-domain-wins",
    ),
    pytest.param(None, (a("victim@other.example"),), None, ("victim@other.example",), id="no-from"),
    pytest.param(a(""), (a("victim@other.example"),), None, ("victim@other.example",), id="empty-from"),
    pytest.param(a("no-at-sign"), (a("x@no-at-sign"),), None, ("x@no-at-sign",), id="from-without-domain"),
]


@pytest.mark.parametrize(("from_", "reply_to", "chosen", "ignored"), CHOICES)
def test_reply_to_choice(
    from_: Address | None, reply_to: tuple[Address, ...], chosen: str | None, ignored: tuple[str, ...]
) -> None:
    """An acknowledgement goes to From, or the first Reply-To on From's very domain (any case,
    IDN or punycode); every other Reply-To is ignored; no From, no acknowledgement."""
    assert floods.reply_to_choice(from_, reply_to) == (chosen, ignored)


# --- the hourly limits ----------------------------------------------------------------------------

LIMITS = Limits(per_sender=3, per_office=10)
OVER = [
    pytest.param(Counts(2, 2, 2, 9), "", id="under-every-limit"),
    pytest.param(Counts(3, 0, 0, 3), "3 ack to rina@example.com", id="recipient"),
    pytest.param(Counts(0, 3, 0, 3), "3 ack caused by author evil@evil.example", id="author"),
    pytest.param(Counts(0, 0, 3, 3), "3 ack caused by envelope sender bulk@mx.example", id="envelope-sender"),
    pytest.param(Counts(0, 0, 0, 10), "10 ack for the whole office", id="office"),
    pytest.param(Counts(0, None, None, 9), "", id="unknown-senders-not-counted"),
    pytest.param(Counts(5, 5, 5, 50), "5 ack to rina@example.com", id="recipient-named-first"),
]


@pytest.mark.parametrize(("counts", "expected"), OVER)
def test_over_limit(counts: Counts, expected: str) -> None:
    """One more mail is refused once the hour's count by recipient, author, envelope sender or
    office reaches its limit; the reason names which one; an unknown sender counts nothing."""
    reason = floods.over_limit(
        counts, LIMITS, "rina@example.com", "evil@evil.example", "bulk@mx.example", "ack"
    )
    assert (expected in reason and reason.startswith("limit reached")) if expected else reason == ""


LABELS = [
    pytest.param("budi@example.com", "budi@example.com", id="plain"),
    pytest.param("evil\r\nBcc: x@y\x1b[31m@evil.example", "evilBcc: x@y[31m@evil.example", id="controls"),
    pytest.param("\u202eexample.com@evil", "example.com@evil", id="bidi-override"),
    pytest.param("x" * 100, "x" * 79 + "…", id="long"),
    pytest.param("", "-", id="empty"),
]


@pytest.mark.parametrize(("address", "label"), LABELS)
def test_sender_label(address: str, label: str) -> None:
    """A sender shown in a digest line has no control, bidi or line-breaking characters and at
    most 80 characters."""
    assert floods.sender_label(address) == label


# --- the settings ---------------------------------------------------------------------------------

BAD = [
    pytest.param(
        ("max_per_office_per_hour = 30", "max_per_office_per_hour = 2"),
        "acknowledgement.max_per_office_per_hour",
        "must not be below max_per_sender_per_hour (3)",
        id="ack-office-below-sender",
    ),
    pytest.param(
        ("max_per_office_per_hour = 30", "max_per_office_per_hour = 0"),
        "acknowledgement.max_per_office_per_hour",
        "must be at least 1",
        id="ack-office-zero",
    ),
    pytest.param(
        ("max_notices_per_sender_per_hour = 2", "max_notices_per_sender_per_hour = 0"),
        "complaints.max_notices_per_sender_per_hour",
        "must be at least 1",
        id="notices-sender-zero",
    ),
    pytest.param(
        ("max_notices_per_office_per_hour = 10", "max_notices_per_office_per_hour = 1"),
        "complaints.max_notices_per_office_per_hour",
        "must not be below max_notices_per_sender_per_hour (2)",
        id="notices-office-below-sender",
    ),
    pytest.param(
        ("max_notices_per_office_per_hour = 10", "max_notices_per_office_per_hours = 10"),
        "complaints.max_notices_per_office_per_hours",
        "unknown key",
        id="notices-misspelt",
    ),
]


@pytest.mark.parametrize(("edit", "key", "reason"), BAD)
def test_wrong_limit_stops_the_start(tmp_path: Path, edit: tuple[str, str], key: str, reason: str) -> None:
    """A wrong limit is a ConfigError with the file, the dotted key and the reason."""
    path = write_settings(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env(PASSWORD))
    assert (caught.value.file, caught.value.key) == (str(path.resolve()), key)
    assert reason in caught.value.reason


def test_shipped_limits(tmp_path: Path) -> None:
    """The shipped file's limits: 3 acks an hour per sender, 30 per office; 2 head notices an
    hour per sender, 10 per office."""
    shipped = load_settings(write_settings(tmp_path), environ=office_env(PASSWORD))
    ack, notices = shipped.acknowledgement, shipped.complaints
    assert (ack.max_per_sender_per_hour, ack.max_per_office_per_hour) == (3, 30)
    assert (notices.max_notices_per_sender_per_hour, notices.max_notices_per_office_per_hour) == (2, 10)


# --- through the pipeline -------------------------------------------------------------------------


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def process(pipe: Pipeline, sender: str, subject: str, *headers: tuple[str, str], body: str = "") -> None:
    raw, _ = make_mail(sender, subject=subject, headers=headers, **({"body": body} if body else {}))
    assert pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw)) is Outcome.TICKET_CREATED


def outbox(engine: Engine, kind: str) -> list[tuple[str, str, str]]:
    """(to, author, envelope sender) of every queued mail of a kind."""
    with db.reading(engine) as s:
        query = (
            select(OutboxRow.envelope_to, OutboxRow.author, OutboxRow.envelope_sender)
            .join(MessageRow, MessageRow.id == OutboxRow.message_pk)  # type: ignore[arg-type]
            .where(MessageRow.kind == kind)
        )
        return [tuple(row) for row in s.execute(query)]  # type: ignore[misc]


def withheld(engine: Engine, event: WithheldEvent) -> list[tuple[str, str]]:
    with db.reading(engine) as s:
        rows = s.execute(select(TicketEvent).where(TicketEvent.event == event)).scalars()
        return [(e.actor, e.detail) for e in rows]


def test_reflection_acks_the_author_never_the_reply_to(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """Ten mails from one author, each with a Reply-To on another domain: ten tickets, three
    acknowledgements, all to the author; no mail to any Reply-To; each ignored Reply-To logged
    with office, mailbox and ticket; seven tickets carry `ack_withheld` with the author's limit."""
    for i in range(10):
        process(
            pipe,
            "evil@evil.example",
            f"Yth. Hadiah Gratis klik evil.example {i}",
            ("Reply-To", f"v{i}@other.example"),
        )
    assert len(list_tickets_of(engine)) == 10
    assert [to for to, _, _ in outbox(engine, "ack")] == ["evil@evil.example"] * 3
    ignored = [e for e in events if e["event"] == "reply_to_ignored"]
    assert [e["reply_to"] for e in ignored] == [[f"v{i}@other.example"] for i in range(10)]
    assert all(e["office"] == "3514" and e["mailbox"] == "INBOX" and e["ticket"] for e in ignored)
    held = withheld(engine, WithheldEvent.ACK)
    assert len(held) == 7 and all(actor == "evil@evil.example" and "at most 3" in d for actor, d in held)


def test_author_limit_counts_replies_to_the_same_domain(pipe: Pipeline, engine: Engine) -> None:
    """Reply-To addresses on the author's own domain are followed, but count against the author:
    three acknowledgements to three addresses, then none."""
    for i in range(5):
        process(pipe, "boss@gmail.example", f"Permohonan {i}", ("Reply-To", f"v{i}@gmail.example"))
    sent = outbox(engine, "ack")
    assert [to for to, _, _ in sent] == ["v0@gmail.example", "v1@gmail.example", "v2@gmail.example"]
    assert {author for _, author, _ in sent} == {"boss@gmail.example"}
    assert all("caused by author boss@gmail.example" in d for _, d in withheld(engine, WithheldEvent.ACK))


def test_envelope_sender_limit(pipe: Pipeline, engine: Engine) -> None:
    """Five authors behind one envelope sender (Return-Path): three acknowledgements, then the
    limit names the envelope sender."""
    for i in range(5):
        process(pipe, f"orang{i}@example.com", f"Permohonan {i}", ("Return-Path", "<bulk@mx.example>"))
    assert [sender for _, _, sender in outbox(engine, "ack")] == ["bulk@mx.example"] * 3
    details = [d for _, d in withheld(engine, WithheldEvent.ACK)]
    assert len(details) == 2 and all("envelope sender bulk@mx.example" in d for d in details)


def test_office_limit(settings: Settings, engine: Engine, clock: FrozenClock) -> None:
    """With acknowledgement.max_per_office_per_hour = 4, six different people in an hour: four
    acknowledgements; an hour later the next person gets one again."""
    ack = dataclasses.replace(settings.acknowledgement, max_per_office_per_hour=4)
    pipe = Pipeline(dataclasses.replace(settings, acknowledgement=ack), engine, Renderer(), clock)
    for i in range(6):
        process(pipe, f"warga{i}@example.com", f"Permohonan {i}")
    assert len(outbox(engine, "ack")) == 4
    assert all("whole office" in d for _, d in withheld(engine, WithheldEvent.ACK))
    clock.advance(timedelta(hours=1, seconds=1))
    process(pipe, "warga9@example.com", "Permohonan 9")
    assert len(outbox(engine, "ack")) == 5


def test_complaint_flood_notifies_the_head_twice_then_digests(
    settings: Settings, pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """Six complaints from one address in an hour: six complaint tickets, three complaint acks,
    two notices to the head, four `complaint_notice_withheld` (logged with office, mailbox and
    ticket), and the head's next digest says "4 pengaduan lain dari budi@example.com"."""
    for i in range(6):
        process(pipe, "budi@example.com", f"Keluhan nomor {i}", body=COMPLAINT)
    assert [t.kind for t in list_tickets_of(engine)] == ["complaint"] * 6
    assert len(outbox(engine, "ack")) == 3
    assert [to for to, _, _ in outbox(engine, "complaint_notice")] == [HEAD_3514] * 2
    assert [actor for actor, _ in withheld(engine, WithheldEvent.COMPLAINT_NOTICE)] == [
        "budi@example.com"
    ] * 4
    logged = [e for e in events if e["event"] == "complaint_notice_withheld"]
    assert len(logged) == 4 and all(e["office"] == "3514" and e["ticket"] for e in logged)
    morning = at("2026-11-24", "08:00")
    found = compose(settings, engine, HEAD_3514, morning)
    _, text, html = notify.digest_parts(Renderer(), found, morning)
    assert "4 pengaduan lain dari budi@example.com" in text
    assert "4 pengaduan lain dari budi@example.com" in html


def test_digest_line_is_escaped_in_html(settings: Settings) -> None:
    """A sender that looks like markup is shown as text in the digest's HTML part."""
    office = settings.office("3514")
    now = at("2026-11-24", "08:00")
    found = digest.sections([office], now, {}, [], {}, {"3514": [("<b>x</b>&y@evil.example", 9)]})
    manager = digest.manager_by_address(settings, HEAD_3514)
    assert manager is not None
    built = digest.build(manager, now.date(), found)
    assert built.total == 0 and built.withheld == 9  # a digest worth sending though nothing is due
    _, text, html = notify.digest_parts(Renderer(), built, now)
    assert "9 pengaduan lain dari <b>x</b>&y@evil.example" in text
    assert "9 pengaduan lain dari &lt;b&gt;x&lt;/b&gt;&amp;y@evil.example" in html
    assert "<b>x</b>" not in html


def list_tickets_of(engine: Engine) -> list[Ticket]:
    with db.reading(engine) as s:
        found = list_tickets(s)
        for t in found:
            s.expunge(t)
        return found
