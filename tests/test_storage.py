"""Storage: the migrations build exactly the models' schema; the same code runs on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import conversations, cursors, db, messages, outbox, tickets
from storage.messages import NewMessage
from storage.tables import MessageRow, Ticket
from storage.tickets import NewTicket
from storage.vocabulary import Direction, MessageKind, TicketState
from tests.conftest import make_mail


def schema_drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": db.include_name})
        return list(compare_metadata(context, SQLModel.metadata))


def test_migrations_match_the_models_on_sqlite(engine: Engine) -> None:
    """`alembic upgrade head` creates exactly the tables, columns and indexes of storage/tables.py."""
    assert schema_drift(engine) == []


def test_sqlite_runs_in_wal_mode(engine: Engine) -> None:
    """The embedded database uses write-ahead logging."""
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_migrate_is_safe_to_repeat(tmp_path: Path, settings: Settings, clock: FrozenClock) -> None:
    """Starting twice on the same database migrates once and keeps the data."""
    first = open_database(settings, clock)
    with db.transaction(first) as s:
        cursors.save_cursor(s, "3514", "INBOX", 5, 9, clock.now())
    first.dispose()
    second = open_database(settings, clock)
    with db.reading(second) as s:
        assert cursors.get_cursor(s, "3514", "INBOX") == (5, 9)
    second.dispose()


def test_pipeline_runs_on_postgresql(postgres: Settings, clock: FrozenClock) -> None:
    """On PostgreSQL: migrations match the models, a request opens a ticket with an ack queued,
    the reply joins it, a repeat is a duplicate, and 32-bit-unsigned UIDs fit."""
    engine = open_database(postgres, clock)
    try:
        assert schema_drift(engine) == []
        pipe = Pipeline(postgres, engine, Renderer(), clock)
        raw, mid = make_mail("rina@example.com")
        big = 4_000_000_000
        assert pipe.process(FetchedMail("3514", "INBOX", big, big, raw)) is Outcome.TICKET_CREATED
        assert pipe.process(FetchedMail("3514", "INBOX", big, big + 1, raw)) is Outcome.DUPLICATE
        reply, _ = make_mail("rina@example.com", subject="Re: x", headers=(("In-Reply-To", f"<{mid}>"),))
        assert pipe.process(FetchedMail("3514", "INBOX", big, big + 2, reply)) is Outcome.FOLLOWUP
        with db.reading(engine) as s:
            (ticket,) = tickets.list_tickets(s)
            assert ticket.message_count == 2
            assert ticket.received_at.tzinfo is not None
            assert cursors.get_cursor(s, "3514", "INBOX") == (big, big + 2)
            assert len(outbox.due_outbox(s, "3514", clock.now(), 10)) == 1
    finally:
        engine.dispose()


def test_upgrade_from_0001_keeps_existing_tickets(
    tmp_path: Path, settings: Settings, clock: FrozenClock
) -> None:
    """A database made by the first release upgrades in place; its tickets survive with an
    empty conversation key and their requester as a participant (0003)."""
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(settings.database_url)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    old_ticket = {
        "ref": "PST-3514-2026-00001", "office_code": "3514", "state": "open", "kind": "request",
        "requester_email": "a@example.com", "requester_name": "A", "subject": "Data", "language": "id",
        "received_at": "2026-11-23 00:00:00", "due_at": "2026-11-25 00:00:00",
        "last_message_at": "2026-11-23 00:00:00", "message_count": 1, "created_at": "2026-11-23 00:00:00",
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO offices VALUES ('3514', 'BPS', 'b@bps.go.id', '3500', 'Asia/Jakarta', :at)"),
            {"at": "2026-11-23 00:00:00"},
        )
        columns = ", ".join(old_ticket)
        conn.execute(
            text(f"INSERT INTO tickets ({columns}) VALUES ({', '.join(':' + c for c in old_ticket)})"),
            old_ticket,
        )
    engine.dispose()
    upgraded = open_database(settings, clock)
    try:
        assert schema_drift(upgraded) == []
        with db.reading(upgraded) as s:
            (ticket,) = tickets.list_tickets(s)
            assert conversations.ticket_participants(s, ticket.id or 0) == {"a@example.com": "requester"}
        assert ticket.ref == "PST-3514-2026-00001"
        assert ticket.subject_key == ""
    finally:
        upgraded.dispose()


WIB = timezone(timedelta(hours=7))


def _ticket_fields(ref: str) -> NewTicket:
    """A ticket's required columns only: the others take the table's defaults."""
    return {
        "ref": ref,
        "office_code": "3514",
        "state": TicketState.OPEN,
        "requester_email": "rina@example.com",
        "received_at": datetime(2026, 11, 23, 9, 0, tzinfo=WIB),
        "due_at": datetime(2026, 11, 25, 15, 30, tzinfo=WIB),
        "last_message_at": datetime(2026, 11, 23, 9, 0, tzinfo=WIB),
        "created_at": datetime(2026, 11, 23, 9, 0, 1, tzinfo=WIB),
        "subject": "Data kemiskinan",
    }


def _message_fields(dedupe_key: str) -> NewMessage:
    """A stored mail's required columns and a few others (body_trimmed has only a server default)."""
    return {
        "office_code": "3514",
        "direction": Direction.IN,
        "kind": MessageKind.REQUEST,
        "dedupe_key": dedupe_key,
        "stored_at": datetime(2026, 11, 23, 9, 0, 2, tzinfo=WIB),
        "raw_sha256": "0" * 64,
        "raw": b"Subject: Data\r\n\r\nMohon data.\r\n",
        "uid": 4_000_000_000,
        "subject": "Data",
    }


Rows = tuple[dict[str, object], dict[str, object]]


def _stored(s: Session, sql: str, leave_out: set[str]) -> list[dict[str, object]]:
    """The rows as stored, not as read back through the models: SQL compares and orders these."""
    result = s.connection().exec_driver_sql(sql)
    keys = list(result.keys())
    return [{k: v for k, v in zip(keys, row, strict=True) if k not in leave_out} for row in result]


def _prepared_and_orm_rows(engine: Engine) -> tuple[Rows, Rows]:
    """A ticket and a mail each written twice, by the prepared statements and by the ORM:
    ((ticket, ticket), (mail, mail)) as the models read them back."""
    with db.transaction(engine) as s:
        fast = tickets.add_ticket(s, **_ticket_fields("PST-3514-2026-90001"))
        s.add(Ticket(**_ticket_fields("PST-3514-2026-90002")))
        messages.add_message(s, **_message_fields("fast"))
        s.add(MessageRow(**_message_fields("orm")))
    with db.reading(engine) as s:
        found = {t.ref: t.model_dump(exclude={"id", "ref"}) for t in s.exec(select(Ticket))}
        mails = {m.dedupe_key: m.model_dump(exclude={"id", "dedupe_key"}) for m in s.exec(select(MessageRow))}
        assert s.get(Ticket, fast) is not None
        stored = _stored(s, "SELECT * FROM tickets ORDER BY ref", {"id", "ref"})
        stored_mails = _stored(s, "SELECT * FROM messages ORDER BY dedupe_key", {"id", "dedupe_key"})
    assert stored[0] == stored[1]
    assert stored_mails[0] == stored_mails[1]
    return (found["PST-3514-2026-90001"], found["PST-3514-2026-90002"]), (mails["fast"], mails["orm"])


def test_prepared_insert_writes_what_the_orm_writes_on_sqlite(engine: Engine) -> None:
    """storage/prepared.py's statements (compiled once, run on the DBAPI cursor) store a ticket
    and a mail exactly as the ORM does: defaults filled, aware datetimes converted to UTC, the
    vocabulary's members as their words (guards SQLAlchemy upgrades)."""
    (fast, orm), (fast_mail, orm_mail) = _prepared_and_orm_rows(engine)
    assert fast == orm
    assert fast_mail == orm_mail
    assert fast["received_at"] == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert (fast["kind"], fast["message_count"], fast["language"], fast["state"]) == (
        "request",
        0,
        "id",
        "open",
    )
    assert (fast_mail["kind"], fast_mail["body_trimmed"], fast_mail["ticket_id"]) == ("request", "", None)


def test_prepared_insert_writes_what_the_orm_writes_on_postgresql(
    postgres: Settings, clock: FrozenClock
) -> None:
    """The same on PostgreSQL (its driver takes named parameters, SQLite's positional ones)."""
    engine = open_database(postgres, clock)
    try:
        (fast, orm), (fast_mail, orm_mail) = _prepared_and_orm_rows(engine)
        assert fast == orm
        assert fast_mail == orm_mail
        assert fast["due_at"] == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    finally:
        engine.dispose()


def test_prepared_insert_refuses_a_name_that_is_no_column(engine: Engine) -> None:
    """A prepared insert given a misspelt column fails loudly instead of storing the default
    (mypy catches it in typed code: this is for rows built as plain dicts)."""
    fields: dict[str, object] = {**_ticket_fields("PST-3514-2026-90003"), "requester_nmae": "Rina"}
    with pytest.raises(KeyError, match="requester_nmae"), db.transaction(engine) as s:
        tickets.add_ticket(s, **fields)  # type: ignore[arg-type]


def test_migration_brings_short_sqlite_datetimes_into_the_long_form(tmp_path: Path) -> None:
    """Migration 0011 rewrites 'YYYY-MM-DD HH:MM:SS' (written by the prepared statements before
    the fix) as 'YYYY-MM-DD HH:MM:SS.000000', so that equal instants compare equal on SQLite."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "0010")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO offices (code, name, email, province_code, time_zone, updated_at)"
            " VALUES ('3514', 'x', 'bps3514@bps.go.id', '3500', 'Asia/Jakarta', '2026-11-23 02:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO mailbox_cursors (office_code, folder, uidvalidity, last_uid, updated_at)"
            " VALUES ('3514', 'INBOX', 1, 2, '2026-11-23 02:00:00.250000')"
        )
    db.migrate(engine)
    with engine.connect() as conn:
        office = conn.exec_driver_sql("SELECT updated_at FROM offices").scalar()
        cursor = conn.exec_driver_sql("SELECT updated_at FROM mailbox_cursors").scalar()
    engine.dispose()
    assert (office, cursor) == ("2026-11-23 02:00:00.000000", "2026-11-23 02:00:00.250000")


def test_a_reader_does_not_wait_for_a_held_write_lock(tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock (the outbox over an SMTP DATA), a
    `db.reading` session reads at once instead of failing after the busy timeout."""
    from sqlalchemy import text as sql

    url = f"sqlite:///{tmp_path / 'lock.db'}"
    writer_engine = db.make_engine(url)
    db.migrate(writer_engine)
    reader_engine = db.make_engine(url, busy_timeout_s=0.2)
    with writer_engine.begin() as writer:  # BEGIN IMMEDIATE: the lock held, as HeldWrite does
        writer.exec_driver_sql("DELETE FROM tickets")
        with db.reading(reader_engine) as s:
            assert s.execute(sql("SELECT count(*) FROM tickets")).scalar_one() == 0
    reader_engine.dispose()
    writer_engine.dispose()
