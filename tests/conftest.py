"""Shared fixtures: the project's settings pointed at a scratch database, the loopback mail
stack, and small builders of realistic mails."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, text

from mailer.clock import Clock, FrozenClock
from mailer.daemon import Daemon, PassReport, open_database
from mailer.settings import Settings, load_settings
from storage import db, tickets
from storage.tables import Ticket
from tests import mailstack

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OFFICE_CODES = ("3571", "3576", "3514", "8205", "1808")
COMPLAINT_MAILBOX = "ipds3571@bps.go.id"  # Kediri's complaint mailbox, [offices.3571.complaint_mailbox]
COMPLAINT_PASSWORD = "3571_PENGADUAN"  # PST_MAIL_PASSWORD_3571_PENGADUAN
_counter = itertools.count(1)


def office_env(password: str | None = None) -> dict[str, str]:
    """The environment the shipped settings.toml needs: one password variable per office."""
    value = password if password is not None else mailstack.STACK.password
    return {f"PST_MAIL_PASSWORD_{code}": value for code in (*OFFICE_CODES, COMPLAINT_PASSWORD)}


def on_stack(settings: Settings) -> Settings:
    """The loopback offices pointed at the ports of the stack the tests use (PST_* variables),
    so that a second stack on other ports runs the same suite; the loopback Postfix writes no
    Authentication-Results, so their officers' mail is taken on its From (the shipped file
    requires authentication: tests/test_staff.py pins that)."""
    r, stack = dataclasses.replace, mailstack.STACK
    return r(
        settings,
        offices=tuple(
            r(
                o,
                imap=r(o.imap, port=stack.imap_port),
                smtp=r(o.smtp, port=stack.smtp_port),
                staff=r(o.staff, require_authentication=False),
                complaint_mailbox=o.complaint_mailbox
                and r(o.complaint_mailbox, imap=r(o.complaint_mailbox.imap, port=stack.imap_port)),
            )
            if o.imap.host == stack.host and o.imap.tls == "plain"
            else o
            for o in settings.offices
        ),
    )


def project_settings(tmp_path: Path, sending: bool = True, **environ: str) -> Settings:
    """The shipped settings.toml, with the database in tmp_path, on the tests' stack."""
    settings = load_settings(ROOT / "settings.toml", environ={**os.environ, **office_env(), **environ})
    return dataclasses.replace(
        on_stack(settings),
        database_url=f"sqlite:///{tmp_path / 'pst.sqlite3'}",
        outbox=dataclasses.replace(settings.outbox, enabled=sending),
        log_format="console",
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return project_settings(tmp_path)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 09:00 WIB


@pytest.fixture
def engine(settings: Settings, clock: FrozenClock) -> Iterator[Engine]:
    engine = open_database(settings, clock)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres(settings: Settings) -> Settings:
    """The settings on an empty scratch PostgreSQL database (scripts/test.sh starts one and sets
    PST_TEST_POSTGRES_URL); skipped with that reason where it is not set."""
    url = os.environ.get("PST_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("PST_TEST_POSTGRES_URL is not set (scripts/test.sh starts PostgreSQL and sets it)")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return dataclasses.replace(settings, database_url=url)


@pytest.fixture
def stack() -> mailstack.Stack:
    """The loopback Dovecot + Postfix (started by scripts/mailstack.sh if it is not up)."""
    mailstack.ensure_up()
    return mailstack.STACK


@pytest.fixture
def office_mailboxes(stack: mailstack.Stack) -> None:
    """Every office mailbox (Kediri's complaint mailbox too) empty at the start of the test."""
    mailstack.clear(*(f"bps{code}@bps.go.id" for code in OFFICE_CODES), COMPLAINT_MAILBOX)


@pytest.fixture
def events() -> Iterator[list[dict[str, object]]]:
    """Every structlog event, with the context bound by contextvars merged in as in production."""
    capture = structlog.testing.LogCapture()
    old = structlog.get_config()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        yield capture.entries
    finally:
        structlog.configure(**old)


def requester() -> str:
    """A fresh requester address (its Dovecot mailbox is empty)."""
    return f"warga{next(_counter)}.{uuid.uuid4().hex[:8]}@example.com"


def make_mail(
    sender: str,
    to: str = "bps3514@bps.go.id",
    subject: str = "Permohonan data jumlah penduduk miskin 2024",
    body: str = "Yth. Bapak/Ibu petugas PST,\r\n\r\nSaya mohon data jumlah penduduk miskin per kecamatan "
    "tahun 2024 untuk penelitian skripsi saya. Terima kasih.\r\n\r\nSalam,\r\nRina",
    name: str = "Rina Wulandari",
    message_id: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    date: datetime | None = None,
) -> tuple[bytes, str]:
    """A plain-text mail as a phone or Gmail would send it; returns (bytes, Message-ID)."""
    mid = message_id or f"{uuid.uuid4().hex}@mail.example.com"
    lines = [
        f"From: {formataddr((name, sender))}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date or datetime(2026, 11, 23, 2, 0, tzinfo=UTC))}",
        f"Message-ID: <{mid}>",
        *(f"{k}: {v}" for k, v in headers),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8"), mid


@contextmanager
def running(settings: Settings) -> Iterator[Daemon]:
    """The daemon running (IDLE, outbox sender) in a thread until the block ends."""
    daemon = Daemon(settings)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    runner = threading.Thread(target=loop.run_until_complete, args=(daemon.run_forever(stop),))
    runner.start()
    try:
        time.sleep(1.0)  # connected and idling
        deadline = time.monotonic() + 30
        while not daemon.sending_ready and time.monotonic() < deadline:  # its sender process
            time.sleep(0.05)
        yield daemon
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(timeout=15)
        loop.close()
    assert not runner.is_alive()


def one_pass(settings: Settings, clock: Clock | None = None) -> PassReport:
    """One `mailer once` pass by a freshly started daemon (as after a restart), at `clock`'s
    time if given; no mailbox may fail."""
    daemon = Daemon(settings, clock=clock) if clock is not None else Daemon(settings)
    try:
        report = asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    assert report.errors == {}
    return report


def only_ticket(settings: Settings) -> Ticket:
    """The one ticket of the test's database."""
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        (ticket,) = tickets.list_tickets(s)
        s.expunge(ticket)
    engine.dispose()
    return ticket


@pytest.fixture(autouse=True)
def keep_logging_setup() -> Iterator[None]:
    """A test that calls cli.main() points logging at its captured output: put the old set-up
    back afterwards, so that later tests do not log into a closed file."""
    old = structlog.get_config()
    yield
    structlog.configure(**old)
