"""The tables. Every datetime is stored as UTC and comes back timezone-aware (UTCDateTime).

offices ─< tickets ─< messages ─ outbox (one delivery row per outgoing message)
                      messages ─< attachments
offices ─< mailbox_cursors, ticket_counters, dead_letters
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def uid_column(nullable: bool = False) -> Any:
    """IMAP UIDs and UIDVALIDITY are unsigned 32-bit: too big for a signed INTEGER on PostgreSQL."""
    return Field(sa_column=Column(BigInteger(), nullable=nullable, default=None if nullable else 0))


def text_column(nullable: bool = False) -> Any:
    return Field(sa_column=Column(Text(), nullable=nullable, default=None if nullable else ""))


class OfficeRow(SQLModel, table=True):
    """The offices of the settings, mirrored at each start so tickets can refer to them."""

    __tablename__ = "offices"
    code: str = Field(primary_key=True, max_length=8)
    name: str
    email: str
    province_code: str = Field(max_length=8)
    time_zone: str
    updated_at: datetime = utc_column()


class MailboxCursor(SQLModel, table=True):
    """How far a mailbox has been read: every UID up to last_uid of this UIDVALIDITY is done."""

    __tablename__ = "mailbox_cursors"
    office_code: str = Field(primary_key=True, foreign_key="offices.code", max_length=8)
    folder: str = Field(primary_key=True)
    uidvalidity: int = uid_column()
    last_uid: int = uid_column()
    updated_at: datetime = utc_column()


class TicketCounter(SQLModel, table=True):
    """Last sequence number handed out per office and year (PST-3514-2026-00042)."""

    __tablename__ = "ticket_counters"
    office_code: str = Field(primary_key=True, foreign_key="offices.code", max_length=8)
    year: int = Field(primary_key=True)
    last_seq: int = 0


class Ticket(SQLModel, table=True):
    """One consultation request and its conversation."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_office_state", "office_code", "state"),
        Index("ix_tickets_conversation", "office_code", "requester_email", "subject_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, max_length=40)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    state: str = Field(max_length=20)  # open | answered | waiting | closed
    kind: str = Field(default="request", max_length=20)  # request | complaint
    requester_email: str = Field(index=True)
    requester_name: str = ""
    subject: str = text_column()
    subject_key: str = Field(default="", sa_column_kwargs={"server_default": ""})  # normalised subject
    language: str = Field(default="id", max_length=5)
    received_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    first_response_at: datetime | None = utc_column(nullable=True)
    last_message_at: datetime = utc_column()
    message_count: int = 0
    created_at: datetime = utc_column()


class MessageRow(SQLModel, table=True):
    """Every mail of a ticket, in or out, with its bytes kept whole."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("office_code", "dedupe_key", name="uq_messages_office_dedupe"),
        Index("ix_messages_office_message_id", "office_code", "message_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    direction: str = Field(max_length=3)  # in | out
    kind: str = Field(max_length=20)  # request | followup | auto_reply | bounce | list | own | ack
    reason: str = ""  # why the rules classified it so
    message_id: str | None = Field(default=None)
    dedupe_key: str
    folder: str | None = None
    uidvalidity: int | None = uid_column(nullable=True)
    uid: int | None = uid_column(nullable=True)
    from_email: str = ""
    from_name: str = ""
    to_emails: str = text_column()
    subject: str = text_column()
    sent_at: datetime | None = utc_column(nullable=True)  # the Date header
    stored_at: datetime = utc_column()
    body_text: str = text_column()  # the full decoded text (HTML made readable), quotes and all
    # What the person wrote: body_text without quoted history and signature (mailer.trim)
    body_trimmed: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    defects: str = text_column()
    raw_sha256: str = Field(max_length=64)
    raw: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))


class AttachmentRow(SQLModel, table=True):
    """A file attached to an incoming mail (inline images of the HTML body are not), also each
    file unpacked from a winmail.dat. The bytes are kept unless over `attachments.max_bytes`;
    the raw mail in messages.raw always keeps everything."""

    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(foreign_key="messages.id", index=True)
    position: int = 0  # order within the mail, from 0
    filename: str = text_column()  # safe to write to disk: no path, no control characters
    original_filename: str = text_column()  # as the mail named it (decoded), "" if unnamed
    content_type: str = Field(max_length=255)
    size: int = Field(sa_column=Column(BigInteger(), nullable=False))  # bytes, decoded
    sha256: str = Field(max_length=64, index=True)
    origin: str = Field(default="", max_length=40)  # "" or the container it came from: "winmail.dat"
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary(), nullable=True))
    omitted: str = text_column()  # why `content` is empty, e.g. "over attachments.max_bytes (10000000)"


class OutboxRow(SQLModel, table=True):
    """Delivery state of one outgoing message: pending → sending → sent | failed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_due", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    message_pk: int = Field(foreign_key="messages.id", unique=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    envelope_from: str
    envelope_to: str
    state: str = Field(max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = utc_column()
    last_error: str = text_column()
    created_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)


class DeadLetter(SQLModel, table=True):
    """A mail that broke a step, kept whole with the step and the reason."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("office_code", "folder", "uidvalidity", "uid", name="uq_dead_letters_identity"),
    )
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    folder: str
    uidvalidity: int = uid_column()
    uid: int = uid_column()
    step: str = Field(max_length=40)
    error: str = text_column()
    raw_sha256: str = Field(max_length=64)
    raw: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
    created_at: datetime = utc_column()
