"""Crashes and database faults around a submission: what a server accepted is recorded (the
record retried, never the submission), a broken SQLite connection does not outlive the fault,
a failing database is retried with backoff and one log line per burst, and `mailer run` killed
again and again while it sends loses nothing and sends at most one duplicate per connection
in flight per kill, with the same Message-ID."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError

from mailer.backoff import Backoff
from mailer.clock import FrozenClock
from mailer.delivery.outbox import OutboxSender
from mailer.delivery.render import Renderer
from mailer.delivery.smtp import Submitter
from mailer.intake.fetch import MailboxWatcher
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.tables import OutboxRow
from tests import crashing, mailstack
from tests.conftest import make_mail, one_pass, requester
from tests.test_restart import fill_office, write_settings

OFFICE = "bps3514@bps.go.id"
MONDAY_9_WIB = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file unwritable for new opens: immutable (chattr +i) for root, whom modes do not
    stop; mode 0444 for anyone else."""
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's transaction holding the database's write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def write(engine: Engine) -> None:
    with db.statements(engine) as conn:
        conn.execute(text("UPDATE outbox SET last_error = '' WHERE id = -1"))


def test_pool_recovers_once_the_file_is_writable_again(engine: Engine, settings: Settings) -> None:
    """A connection opened while the SQLite file could not be written (SQLite then opens it
    read-only) is thrown away when a write fails: once the file is writable, writes succeed."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    engine.dispose()
    with read_only(path), pytest.raises(OperationalError, match="readonly"):
        write(engine)
    for _ in range(20):
        write(engine)


class FaultAfterAccept:
    """The real submitter; once the server has accepted a mail, `fault` starts (in a thread)
    and lasts `hold_s`, before the sender may record it."""

    def __init__(
        self, real: Submitter, fault: Callable[[], contextlib.AbstractContextManager[object]]
    ) -> None:
        self.real, self.fault = real, fault

    async def send(
        self, envelope_from: str, envelope_to: str, raw: bytes, before_data: BeforeData | None = None
    ) -> str:
        reply = await self.real.send(envelope_from, envelope_to, raw, before_data)
        started = threading.Event()

        def hold() -> None:
            with self.fault():
                started.set()
                time.sleep(HOLD_S)

        threading.Thread(target=hold, daemon=True).start()
        started.wait(5)
        return reply

    async def close(self) -> None:
        await self.real.close()


HOLD_S = 1.5
BeforeData = Callable[[], Awaitable[object]]


@contextlib.contextmanager
def failing_disk(path: Path) -> Iterator[None]:
    """Writes to the database and its WAL fail with an I/O error, even on open files: both
    made immutable (chattr +i; root only). The shared-memory file is left alone (it is mapped)."""
    files = [str(path), f"{path}-wal"]
    subprocess.run(["chattr", "+i", *files], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)


def queued_ack(settings: Settings, clock: FrozenClock) -> str:
    """A request read (sending off): its acknowledgement waits in the outbox. Returns its writer."""
    who = requester()
    mailstack.send(make_mail(who)[0], who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    one_pass(dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, enabled=False)), clock)
    return who


def outbox_rows(engine: Engine) -> list[str]:
    with db.reading(engine) as s:
        return list(s.execute(select(OutboxRow.state)).scalars())


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
@pytest.mark.skipif(os.geteuid() != 0, reason="an I/O error on an open file needs chattr (root)")
def test_disk_failing_just_after_the_250_records_the_mail_once_it_works(
    settings: Settings, events: list[dict[str, object]]
) -> None:
    """The disk fails (I/O error) right after Postfix accepted an acknowledgement: the sender
    keeps trying to record it, never to send it again, and records it `sent` once the disk
    works; the requester has exactly one copy, and a restart sends nothing more."""
    clock = FrozenClock(MONDAY_9_WIB)
    who = queued_ack(settings, clock)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    engine = db.make_engine(settings.database_url, busy_timeout_s=0.2)
    office = settings.office("3514")

    async def scenario() -> None:
        sender = OutboxSender(office, settings.outbox, engine, clock, settings.acknowledgement.quiet_hours)
        sender.submitters = [FaultAfterAccept(sender.submitters[0], lambda: failing_disk(path))]  # type: ignore[list-item]
        with pytest.raises(OperationalError, match="disk I/O error"):
            await sender.send_due()  # the round stops (and the loop backs off) but it was recorded
        assert outbox_rows(engine) == ["sent"]
        await sender.close()
        again = OutboxSender(office, settings.outbox, engine, clock, settings.acknowledgement.quiet_hours)
        await again.resume()
        assert await again.send_due() == {}
        await again.close()

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
    names = [e["event"] for e in events]
    assert 1 <= names.count("outcome_not_recorded") <= 2  # a line per reason, not per attempt
    assert names.count("outcome_recorded") == 1
    assert "outbox_resumed_in_flight" not in names
    mailstack.wait_for(who, 1)
    time.sleep(0.5)  # a duplicate would have landed by now
    assert len(mailstack.fetch_all(who)) == 1


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_database_locked_when_a_mail_would_go_sends_it_once_the_lock_is_gone(settings: Settings) -> None:
    """Another process holds the database's write lock when the sender is about to submit an
    acknowledgement: nothing is submitted (the server's envelope is reset), the mail goes back
    to the queue, and the next round, with the lock gone, sends it exactly once."""
    clock = FrozenClock(MONDAY_9_WIB)
    who = queued_ack(settings, clock)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    engine = db.make_engine(settings.database_url, busy_timeout_s=0.2)
    sender = OutboxSender(
        settings.office("3514"), settings.outbox, engine, clock, settings.acknowledgement.quiet_hours
    )

    async def scenario() -> None:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        sends: list[str] = []

        async def pause(seconds: float, _stop: asyncio.Event) -> None:
            if other.in_transaction:
                other.execute("ROLLBACK")  # the other transaction ends while we wait

        class LockedFirst(FaultAfterAccept):
            async def send(self, *args: Any) -> str:
                sends.append(args[1])
                if len(sends) == 1:
                    other.execute("BEGIN IMMEDIATE")  # claimed; now another process takes the lock
                return await self.real.send(*args)

        sender.pause = pause
        sender.submitters = [LockedFirst(sender.submitters[0], contextlib.nullcontext)]  # type: ignore[list-item]
        with pytest.raises(OperationalError, match="locked"):
            await sender.send_due()
        assert outbox_rows(engine) == ["pending"]
        assert await sender.send_due() == {"sent": 1}
        assert sends == [who, who]
        await sender.close()
        other.close()

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()
    mailstack.wait_for(who, 1)
    time.sleep(0.5)
    assert len(mailstack.fetch_all(who)) == 1


def test_sender_backs_off_while_the_database_stays_locked(
    engine: Engine, settings: Settings, events: list[dict[str, object]]
) -> None:
    """A database locked for long: the sender's rounds wait 0.5 s, 1 s, 2 s … up to a minute
    between attempts (a fake clock), log one line for the whole burst and one when it ends."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    clock = FrozenClock(MONDAY_9_WIB)
    locked = db.make_engine(settings.database_url, busy_timeout_s=0.01)
    sender = OutboxSender(settings.office("3514"), settings.outbox, locked, clock, ("21:00", "06:00"))
    waits: list[float] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        lock = write_lock(path)
        lock.__enter__()

        async def fake_pause(seconds: float, _stop: asyncio.Event) -> None:
            waits.append(seconds)
            clock.advance(timedelta(seconds=seconds))
            if len(waits) == 12:
                lock.__exit__(None, None, None)  # the other transaction ends
                asyncio.get_running_loop().call_later(0.3, stop.set)

        sender.pause = fake_pause
        await sender.run(stop)

    try:
        asyncio.run(scenario())
    finally:
        locked.dispose()
    assert waits == [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]
    failed = [e for e in events if e["event"] == "outbox_round_failed"]
    assert len(failed) == 1 and "database is locked" in str(failed[0]["reason"])
    assert "exc_info" not in failed[0]  # the database failing is no bug: no traceback
    [over] = [e for e in events if e["event"] == "outbox_rounds_resumed"]
    assert over["failures"] == 12 and over["lasted_s"] == sum(waits)


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
@pytest.mark.timeout(180)
def test_sigkill_while_sending_many_times_loses_nothing_one_duplicate_per_connection_at_most(
    tmp_path: Path,
) -> None:
    """`mailer run` killed (SIGKILL) a dozen times while it sends a backlog of 200, then run to
    the end: every requester has an acknowledgement, duplicates number at most one per SMTP
    connection per kill, and every copy of a mail carries its Message-ID."""
    total, kills = 200, 12
    requesters = fill_office(total)
    settings = write_settings(tmp_path, sending=True)
    database = tmp_path / "pst.sqlite3"
    landed = crashing.kill_while_sending(settings, database, total, kills, random.Random(6))
    crashing.finish(settings, database, total)
    run = crashing.CrashRun(kills=landed, received=crashing.received(requesters))
    connections = 2  # settings.toml, [outbox] connections
    assert landed >= kills // 2  # most kills came while mail was being sent
    assert run.lost == []
    assert run.extra <= landed * connections, run.extra
    assert run.mixed_ids == []
    assert all(ids[0] for ids in run.received.values())


def test_backoff_doubles_to_its_cap_and_logs_a_burst_once(events: list[dict[str, object]]) -> None:
    """Backoff: waits double from min_s to max_s; one line when a burst starts, one more only if
    the reason changes, one when it ends (with how many failed and for how long), and the next
    burst starts again from min_s."""
    clock = FrozenClock(MONDAY_9_WIB)
    retry = Backoff("thing_failed", "thing_recovered", structlog.get_logger(), clock, min_s=1, max_s=8)
    waits = []
    for n in range(6):
        waits.append(
            retry.failed(
                OperationalError("BEGIN", {}, Exception("database is locked" if n < 4 else "disk I/O error"))
            )
        )
        clock.advance(timedelta(seconds=waits[-1]))
    retry.succeeded()
    retry.succeeded()  # nothing to say
    assert waits == [1, 2, 4, 8, 8, 8]
    assert retry.failed(OperationalError("BEGIN", {}, Exception("database is locked"))) == 1
    lines = [(e["event"], e.get("failures")) for e in events]
    assert lines == [
        ("thing_failed", 1),
        ("thing_failed", 5),  # the reason changed
        ("thing_recovered", 6),
        ("thing_failed", 1),
    ]
    recovered = next(e for e in events if e["event"] == "thing_recovered")
    assert recovered["lasted_s"] == 31


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_mailbox_watcher_backs_off_while_the_database_fails_after_each_login(
    settings: Settings, engine: Engine, clock: FrozenClock, events: list[dict[str, object]]
) -> None:
    """The IMAP login works but the database is locked at every sync: the watcher's waits keep
    doubling (a login does not reset them; only a sync that works does) and it logs one line for
    the burst, and one when the database is back and a sync works."""
    who = requester()
    mailstack.send(make_mail(who)[0], who, [OFFICE])
    mailstack.wait_for(OFFICE, 1)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    daemon = dataclasses.replace(settings.daemon, reconnect_min_s=0.05, reconnect_max_s=0.4)
    locked = db.make_engine(settings.database_url, busy_timeout_s=0.01)
    pipeline = Pipeline(settings, locked, Renderer(), clock)
    watcher = MailboxWatcher(settings.office("3514"), daemon, locked, pipeline, clock)

    async def scenario() -> None:
        stop = asyncio.Event()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(2.0)  # with waits reset at each login: some 20 attempts
        other.execute("ROLLBACK")
        other.close()
        await asyncio.wait_for(watcher.caught_up.wait(), 5)
        stop.set()
        watcher.request_stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        watcher.shutdown()
        locked.dispose()
    failed = [e for e in events if e["event"] == "mailbox_disconnected"]
    assert len(failed) == 1 and "database is locked" in str(failed[0]["reason"])
    [back] = [e for e in events if e["event"] == "mailbox_reconnected"]
    assert 4 <= int(back["failures"]) <= 9  # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 … in 2 s
    assert [e["event"] for e in events].count("ticket_created") == 1
