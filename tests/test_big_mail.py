"""Big mails in bounded memory (issue 13, item 7): FETCH batches cut by bytes, a mail over
daemon.max_parse_bytes ticketed from its header and the start of its text and stored whole,
a server's wrong RFC822.SIZE harmless. The limits are lowered here to 1 MB so that a 3 MB
mail is "big"; bench/bigmail.py measures ten 40 MB mails."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from mailer.clock import FrozenClock
from mailer.daemon import Daemon, open_database
from mailer.delivery.render import Renderer
from mailer.intake.budget import ByteBudget
from mailer.intake.fetch import MailboxWatcher, byte_batches
from mailer.intake.imap import FolderState, MailboxClient
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.tables import AttachmentRow, DeadLetter, MessageRow, Ticket
from tests import mailstack
from tests.conftest import make_mail, one_pass, requester

LIMIT = 1_000_000
WRITTEN = "Yth. petugas PST, terlampir hasil survei kami. Mohon tabel ringkasannya per kecamatan."
_uids = itertools.count(1)


def big_mail(sender: str, size: int, pdf: bytes = b"") -> bytes:
    """A request whose text comes first, then a PDF (random bytes unless given), base64: about
    `size` bytes."""
    pdf = pdf or b"%PDF-1.7\n" + os.urandom(size * 3 // 4)
    subject = "Permohonan data: hasil survei terlampir"
    lines = [
        f"From: Peneliti <{sender}>",
        "To: bps3514@bps.go.id",
        f"Subject: {subject}",
        "Date: Mon, 23 Nov 2026 09:00:00 +0700",
        f"Message-ID: <big-{os.urandom(6).hex()}@mail.example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        WRITTEN,
        "",
        "--b1",
        'Content-Type: application/pdf; name="survei.pdf"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="survei.pdf"',
        "",
        "",
    ]
    encoded = base64.encodebytes(pdf).replace(b"\n", b"\r\n")
    return "\r\n".join(lines).encode() + encoded + b"--b1--\r\n"


def lowered(settings: Settings) -> Settings:
    daemon = dataclasses.replace(settings.daemon, max_parse_bytes=LIMIT, fetch_batch_bytes=LIMIT)
    return dataclasses.replace(settings, daemon=daemon)


@dataclasses.dataclass
class Stored:
    """An inbound message as stored: its row's fields, its ticket's, its attachments'."""

    raw: bytes
    raw_sha256: str
    subject: str
    body_text: str
    defects: str
    requester: str | None
    ticket_subject: str | None
    files: list[tuple[str, bytes | None]]


def stored(engine: Engine) -> list[Stored]:
    """Every inbound message, in UID order."""
    found = []
    with db.reading(engine) as s:
        query = select(MessageRow).where(col(MessageRow.direction) == "in").order_by(col(MessageRow.uid))
        for row in s.execute(query).scalars().all():
            ticket = s.get(Ticket, row.ticket_id) if row.ticket_id else None
            files = s.execute(select(AttachmentRow).where(col(AttachmentRow.message_pk) == row.id)).scalars()
            found.append(
                Stored(
                    row.raw, row.raw_sha256, row.subject, row.body_text, row.defects,
                    ticket.requester_email if ticket else None, ticket.subject if ticket else None,
                    [(f.filename, f.content) for f in files],
                )
            )  # fmt: skip
    return found


# --- batches by bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "batches"),
    [
        pytest.param({1: 10, 2: 20, 3: 30}, [[1, 2, 3]], id="small-mails-one-batch"),
        pytest.param({1: 60, 2: 50, 3: 40}, [[1], [2, 3]], id="cut-where-the-budget-ends"),
        pytest.param({1: 10, 2: 500, 3: 10}, [[1], [2], [3]], id="a-mail-over-the-budget-comes-alone"),
        pytest.param({1: 10, 2: None, 3: 10}, [[1], [2], [3]], id="unknown-size-comes-alone"),
        pytest.param({1: 10, 3: 10}, [[1, 3]], id="a-uid-gone-meanwhile-is-left-out"),
        pytest.param({1: 100, 2: 0, 3: 0}, [[1, 2, 3]], id="exactly-the-budget"),
    ],
)
def test_fetch_batches_are_cut_by_bytes(sizes: dict[int, int | None], batches: list[list[int]]) -> None:
    """FETCH batches keep the UID order and hold at most fetch_batch_bytes by RFC822.SIZE."""
    assert list(byte_batches([1, 2, 3], sizes, 100)) == batches


# --- the bytes held at once, over all mailboxes ------------------------------------------------


def taking(
    budget: ByteBudget, size: int, order: list[int], stop: threading.Event | None = None
) -> threading.Thread:
    """A thread that takes `size` bytes (noting `size` in `order` once it has them)."""

    def run() -> None:
        if budget.take(size, (stop or threading.Event()).is_set):
            order.append(size)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)  # it is waiting, or done
    return thread


def test_budget_holds_a_batch_back_until_its_bytes_fit() -> None:
    """A batch that does not fit beside what other mailboxes hold waits until they give back."""
    budget, order = ByteBudget(100), list[int]()
    assert budget.take(60, lambda: False)
    waiter = taking(budget, 50, order)
    assert order == []
    budget.give(60)
    waiter.join(timeout=5)
    assert order == [50] and budget.held == 50


def test_budget_lets_a_mail_bigger_than_itself_in_alone() -> None:
    """A mail bigger than the whole budget goes once nothing else is held, never beside others."""
    budget, order = ByteBudget(100), list[int]()
    assert budget.take(10, lambda: False)
    waiter = taking(budget, 500, order)
    assert order == []
    budget.give(10)
    waiter.join(timeout=5)
    assert order == [500]


def test_budget_serves_first_come_first() -> None:
    """A small batch that would fit waits behind a bigger one that came first (no starving)."""
    budget, order = ByteBudget(100), list[int]()
    assert budget.take(60, lambda: False)
    first = taking(budget, 50, order)
    second = taking(budget, 10, order)
    assert order == []
    budget.give(60)
    first.join(timeout=5)
    second.join(timeout=5)
    assert order == [50, 10]


def test_budget_wait_ends_on_stop() -> None:
    """A mailbox told to stop while it waits takes nothing and lets the next one go."""
    budget, order, stop = ByteBudget(100), list[int](), threading.Event()
    assert budget.take(100, lambda: False)
    waiter = taking(budget, 50, order, stop)
    stop.set()
    waiter.join(timeout=5)
    assert not waiter.is_alive() and order == [] and budget.held == 100


def test_daemon_mailboxes_share_one_budget(settings: Settings) -> None:
    """Every mailbox of the daemon counts its bytes against the same budget."""
    daemon = Daemon(settings)
    try:
        budgets = {id(w.budget) for w in daemon.watchers.values()}
        assert budgets == {id(daemon.fetch_budget)} and daemon.fetch_budget.limit == 20_000_000
    finally:
        daemon.close()


# --- a mail over max_parse_bytes -------------------------------------------------------------


@pytest.fixture
def big_settings(settings: Settings) -> Settings:
    return lowered(settings)


def pipeline_on(settings: Settings, clock: FrozenClock) -> tuple[Pipeline, Engine]:
    engine = open_database(settings, clock)
    return Pipeline(settings, engine, Renderer(), clock), engine


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_big_mail_ticketed_from_its_header_and_stored_whole(
    request: pytest.FixtureRequest, big_settings: Settings, clock: FrozenClock, database: str
) -> None:
    """A 3 MB mail over max_parse_bytes opens its ticket (subject, requester, the person's text
    and a note) and a small acknowledgement, lists no attachment, and its raw bytes are stored
    byte for byte."""
    settings = big_settings
    if database == "postgresql":
        settings = lowered(request.getfixturevalue("postgres"))
    pipe, engine = pipeline_on(settings, clock)
    raw = big_mail("peneliti@example.com", 3_000_000)
    assert pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw)) is Outcome.TICKET_CREATED
    (message,) = stored(engine)
    with db.reading(engine) as s:
        (ack,) = s.execute(select(MessageRow.raw).where(col(MessageRow.direction) == "out")).scalars().all()
    engine.dispose()
    assert len(ack) < 20_000  # the acknowledgement carries nothing of the mail's bulk
    assert message.ticket_subject == "Permohonan data: hasil survei terlampir"
    assert message.requester == "peneliti@example.com"
    assert message.body_text.startswith(WRITTEN)
    assert (
        "over daemon.max_parse_bytes" in message.body_text
        and "attachments were not unpacked" in message.body_text
    )
    assert "too big to unpack" in message.defects
    assert message.files == []
    assert message.raw == raw and message.raw_sha256 == hashlib.sha256(raw).hexdigest()


def test_big_mail_without_end_of_header_dead_lettered_whole(
    big_settings: Settings, clock: FrozenClock
) -> None:
    """A big mail whose header block never ends is a dead letter with the reason, kept whole."""
    pipe, engine = pipeline_on(big_settings, clock)
    raw = b"From: x@example.com\r\nX-Filler: " + b"a" * 2_000_000 + b"\r\n"
    assert pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw)) is Outcome.DEAD_LETTER
    with db.reading(engine) as s:
        (dead,) = s.execute(select(DeadLetter)).scalars().all()
        assert dead.step == "parse" and "header block does not end" in dead.error
        assert dead.raw == raw
    engine.dispose()


def test_mail_under_the_limit_is_read_whole(big_settings: Settings, clock: FrozenClock) -> None:
    """A mail under max_parse_bytes is read as always: its 1.3 MB attachment listed and stored
    byte for byte (written to SQLite in pieces)."""
    daemon = dataclasses.replace(big_settings.daemon, max_parse_bytes=2 * LIMIT)
    pipe, engine = pipeline_on(dataclasses.replace(big_settings, daemon=daemon), clock)
    pdf = b"%PDF-1.7\n" + os.urandom(1_300_000)
    raw = big_mail("peneliti@example.com", 0, pdf)
    assert LIMIT < len(raw) < 2 * LIMIT
    assert pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw)) is Outcome.TICKET_CREATED
    (message,) = stored(engine)
    engine.dispose()
    assert message.body_text.strip() == WRITTEN and message.files == [("survei.pdf", pdf)]
    assert message.raw == raw


# --- a server whose RFC822.SIZE is wrong (a double: Dovecot tells the truth) -----------------


class LyingServer:
    """The MailboxClient calls MailboxWatcher.sync makes, over mails whose advertised sizes
    are not their sizes; records each FETCH of bodies."""

    folder = "INBOX"

    def __init__(self, mails: dict[int, tuple[bytes, int]]) -> None:
        self.mails = mails
        self.fetches: list[list[int]] = []

    def examine(self) -> FolderState:
        return FolderState(uidvalidity=7, uidnext=max(self.mails) + 1, exists=len(self.mails))

    def uids_after(self, last_uid: int) -> list[int]:
        return [uid for uid in sorted(self.mails) if uid > last_uid]

    def sizes(self, uids: Iterable[int]) -> dict[int, int | None]:
        return {uid: self.mails[uid][1] for uid in uids}

    def fetch(self, uids: Iterable[int]) -> Iterator[tuple[int, bytes, datetime | None]]:
        self.fetches.append(list(uids))
        for uid in self.fetches[-1]:
            yield uid, self.mails[uid][0], None


def test_wrong_rfc822_size_only_changes_the_batches(big_settings: Settings, clock: FrozenClock) -> None:
    """A 3 MB mail said to be 100 bytes still goes the big mail's way (by its real size), a
    small one said to be 50 MB is read whole; both are ticketed, in order, in planned batches."""
    pipe, engine = pipeline_on(big_settings, clock)
    big = big_mail("besar@example.com", 3_000_000)
    small, _ = make_mail("kecil@example.com", subject="Permohonan data inflasi")
    other, _ = make_mail("lain@example.com", subject="Permohonan data upah")
    server = LyingServer({1: (big, 100), 2: (small, 50_000_000), 3: (other, 200)})
    watcher = MailboxWatcher(big_settings.office("3514"), big_settings.daemon, engine, pipe, clock)
    watcher.client = server  # type: ignore[assignment]
    assert watcher.sync()[Outcome.TICKET_CREATED] == 3
    assert server.fetches == [[1], [2], [3]]
    b, s, o = stored(engine)
    engine.dispose()
    assert b.raw == big and "over daemon.max_parse_bytes" in b.body_text
    assert s.raw == small and "max_parse_bytes" not in s.body_text and s.subject == "Permohonan data inflasi"
    assert o.subject == "Permohonan data upah"


# --- on the real stack -------------------------------------------------------------------------


def with_attachment(sender: str, n: int) -> bytes:
    """An ordinary request with a small spreadsheet attached."""
    data = base64.encodebytes(b"PK\x03\x04" + os.urandom(20_000)).replace(b"\n", b"\r\n")
    head = (
        f"From: Warga {n} <{sender}>\r\nTo: bps3514@bps.go.id\r\nSubject: Permohonan data nomor {n}\r\n"
        "Date: Mon, 23 Nov 2026 09:00:00 +0700\r\n"
        f"Message-ID: <small-{n}-{os.urandom(4).hex()}@example.com>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n\r\n--s\r\n'
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nMohon data nomor {n}. Terima kasih.\r\n--s\r\n"
        f'Content-Type: application/vnd.ms-excel; name="tabel-{n}.xlsx"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode() + data + b"--s--\r\n"


def test_big_mail_among_ordinary_ones_on_the_stack(
    big_settings: Settings, office_mailboxes: None, stack: mailstack.Stack
) -> None:
    """From Dovecot: a 3 MB mail among four ordinary ones is ticketed from its header and
    stored whole; the ordinary ones keep their text and attachments; every one is acknowledged."""
    people = [requester() for _ in range(5)]
    mails = [with_attachment(people[0], 0), with_attachment(people[1], 1), big_mail(people[2], 3_000_000)]
    mails += [with_attachment(people[3], 3), with_attachment(people[4], 4)]
    for raw in mails:
        mailstack.append("bps3514@bps.go.id", raw)
    report = one_pass(big_settings)
    assert report.fetched["3514"][Outcome.TICKET_CREATED] == 5
    engine = db.make_engine(big_settings.database_url)
    rows = stored(engine)
    engine.dispose()
    assert [m.raw for m in rows] == mails
    for n, message in enumerate(rows):
        assert message.requester == people[n]
        if n == 2:
            assert message.body_text.startswith(WRITTEN) and "max_parse_bytes" in message.body_text
            assert message.files == []
        else:
            assert message.body_text.strip() == f"Mohon data nomor {n}. Terima kasih."
            ((name, content),) = message.files
            assert name == f"tabel-{n}.xlsx" and content


def test_imaplib_keeps_no_trace_of_the_mails_it_reads(stack: mailstack.Stack, settings: Settings) -> None:
    """imapclient's imaplib debug level (which formats every literal read with %r, three times
    the mail in memory) is off on our connections."""
    client = MailboxClient(settings.office("3514").imap)
    client.connect()
    try:
        assert client.client._imap.debug == 0
    finally:
        client.close()
