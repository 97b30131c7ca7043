"""The tables. Every datetime is stored as UTC and comes back timezone-aware (UTCDateTime).

offices ─< tickets ─< messages ─ outbox (one delivery row per outgoing message)
           tickets ─< ticket_events (state changes: who, when, why)
           tickets ─< ticket_participants; tickets ─< ticket_links >─ tickets (a follow-up kept apart)
                      messages ─< attachments
offices ─< mailbox_cursors, ticket_counters, dead_letters, address_flags
           tickets ─ ratings (one per ticket, the latest wins); report_deliveries (monthly report sent)
                      messages ─< early_answers (a staff answer stored before the request it cites)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from storage.vocabulary import Resolution, TicketKind


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


class ConnectionHealth(SQLModel, table=True):
    """Each connection a daemon keeps for an office, as it last went: a mailbox folder
    ("imap:inbox", "imap:sent") or its SMTP server ("smtp"). `mailer status` alerts on it."""

    __tablename__ = "connection_health"
    office_code: str = Field(primary_key=True, foreign_key="offices.code", max_length=8)
    channel: str = Field(primary_key=True, max_length=40)
    last_ok_at: datetime | None = utc_column(nullable=True)  # the last session that worked
    failing_since: datetime | None = utc_column(nullable=True)  # first failure after the last success
    last_error: str = text_column()
    last_error_at: datetime | None = utc_column(nullable=True)


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
    state: str = Field(max_length=20)  # a TicketState: open | answered | waiting | closed
    kind: str = Field(default=TicketKind.REQUEST, max_length=20)  # a TicketKind: request | complaint
    requester_email: str = Field(index=True)
    requester_name: str = ""
    subject: str = text_column()
    subject_key: str = Field(default="", sa_column_kwargs={"server_default": ""})  # normalised subject
    language: str = Field(default="id", max_length=5)
    received_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    # The SLA clock's round: 1 from the request, one more at each fresh start (the requester
    # writing again after an answer, a reopening); a pause (#tunggu) moves due_at, not the round.
    clock_round: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    first_response_at: datetime | None = utc_column(nullable=True)
    first_response_by: str = Field(default="", sa_column_kwargs={"server_default": ""})  # the officer
    last_officer: str = Field(default="", sa_column_kwargs={"server_default": ""})  # who last handled it
    # How it was settled: answered | thanks | spam | duplicate | closed ("" while open)
    resolution: str = Field(default=Resolution.NONE, max_length=20, sa_column_kwargs={"server_default": ""})
    state_changed_at: datetime | None = utc_column(nullable=True)
    closed_at: datetime | None = utc_column(nullable=True)  # when it was last closed (reopen window)
    last_message_at: datetime = utc_column()
    message_count: int = 0
    created_at: datetime = utc_column()


class MessageRow(SQLModel, table=True):
    """Every mail of a ticket, in or out, with its bytes kept whole."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("office_code", "dedupe_key", name="uq_messages_office_dedupe"),
        Index("ix_messages_office_message_id", "office_code", "message_id"),
        Index("ix_messages_office_conversation", "office_code", "conversation_index"),
    )
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    direction: str = Field(max_length=3)  # a Direction: in | out
    kind: str = Field(max_length=20)  # a MessageKind: request | followup | auto_reply | … | ack | notice
    reason: str = ""  # why the rules classified it so
    message_id: str | None = Field(default=None)
    conversation_index: str | None = Field(default=None, max_length=44)  # Thread-Index, first 22 bytes, hex
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
    # What the person wrote: body_text without quoted history and signature (mailer.decide.trim)
    body_trimmed: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    defects: str = text_column()
    raw_sha256: str = Field(max_length=64)
    raw: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))


class TicketEvent(SQLModel, table=True):
    """One change of a ticket's state, with who made it and why: the ticket's history, and the
    spans the SLA clock was paused (waiting → resumed)."""

    __tablename__ = "ticket_events"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    message_pk: int | None = Field(default=None, foreign_key="messages.id")  # the mail that caused it
    at: datetime = utc_column()
    event: str = Field(max_length=30)  # answered | waiting | resumed | closed | reopened | note | …
    state: str = Field(max_length=20)  # the ticket's state after the event
    actor: str = ""  # the officer's or requester's address
    detail: str = text_column()


class TicketParticipant(SQLModel, table=True):
    """A person on a ticket: the requester, the people in From/To/Cc of its mails (not our
    office addresses), and staff. Only they continue a ticket through a guessable match."""

    __tablename__ = "ticket_participants"
    ticket_id: int = Field(primary_key=True, foreign_key="tickets.id")
    email: str = Field(primary_key=True)
    role: str = Field(max_length=10)  # requester | cc | staff
    added_at: datetime = utc_column()


class TicketLink(SQLModel, table=True):
    """Ticket `ticket_id` was opened from a mail that pointed at `linked_ticket_id` but was not
    let in (a non-participant, or the requester after the reopen window)."""

    __tablename__ = "ticket_links"
    __table_args__ = (UniqueConstraint("ticket_id", "linked_ticket_id", name="uq_ticket_links_pair"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    linked_ticket_id: int = Field(foreign_key="tickets.id", index=True)
    reason: str = Field(max_length=40)  # not_a_participant | reopen_window_passed
    created_at: datetime = utc_column()


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
    """Delivery state of one outgoing message: pending → sending → sent | failed, or
    suppressed (found at send time no longer to go: its recipient flagged, its ticket spam)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_due", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    message_pk: int = Field(foreign_key="messages.id", unique=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    envelope_from: str
    envelope_to: str
    state: str = Field(max_length=10)  # an OutboxState
    attempts: int = 0
    next_attempt_at: datetime = utc_column()
    last_error: str = text_column()
    created_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)
    failed_at: datetime | None = utc_column(nullable=True)  # when it was recorded failed (`mailer status`)
    # From this moment on the mail waits out the quiet hours of the night (mailer/quiet.py):
    # an acknowledgement's mail received + acknowledgement.immediate_within_minutes. None: never.
    quiet_after: datetime | None = utc_column(nullable=True)
    # The author (From) and envelope sender (Return-Path) of the incoming mail that caused this
    # one (an ack, a complaint notice); "" for mail no incoming mail caused. The hourly limits
    # count them (mailer/decide/floods.py).
    author: str = Field(default="", sa_column_kwargs={"server_default": ""})
    envelope_sender: str = Field(default="", sa_column_kwargs={"server_default": ""})


class DeadLetter(SQLModel, table=True):
    """A mail that broke a step, kept whole with the step and the reason. `mailer dead-letters
    retry` runs it through the pipeline again: on success the row is kept, resolved (when, and
    what became of the mail); on failure it keeps the newest step and reason."""

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
    created_at: datetime = utc_column()  # when it was first fetched (and failed)
    retries: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # by `dead-letters retry`
    resolved_at: datetime | None = utc_column(nullable=True)  # None: still needs an operator
    resolution: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))


class AddressFlag(SQLModel, table=True):
    """An outside address that gets no automatic mail from an office: `bouncing` (a permanent
    delivery failure of our mail to it; cleared when it writes to us again) or `complained`
    (an ARF complaint about our mail; never cleared automatically)."""

    __tablename__ = "address_flags"
    office_code: str = Field(primary_key=True, foreign_key="offices.code", max_length=8)
    address: str = Field(primary_key=True)
    flag: str = Field(max_length=12)  # bouncing | complained
    since: datetime = utc_column()
    reason: str = text_column()
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")  # the mail that bounced


class Rating(SQLModel, table=True):
    """The requester's rating of a ticket on the scale of the public satisfaction survey (SKM,
    1 tidak puas … 4 sangat puas): one row per ticket, the latest rating wins."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_office_rated", "office_code", "rated_at"),)
    ticket_id: int = Field(primary_key=True, foreign_key="tickets.id")
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    score: int  # 1..4
    how: str = Field(max_length=10)  # mailto (the link's subject marker) | reply (a number or words)
    rater: str = ""  # the address it came from
    message_id: str | None = Field(default=None)  # the rating mail
    rated_at: datetime = utc_column()
    count: int = 1  # ratings received for the ticket (only the latest is kept)


class ReportDelivery(SQLModel, table=True):
    """A monthly report queued for a manager: at most once per (month, recipient, scope)."""

    __tablename__ = "report_deliveries"
    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM reported on
    recipient: str = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=8)  # the office code reported on
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    queued_at: datetime = utc_column()


# The per-sender acknowledgement limit counts an office's recent mail to one address.
Index(
    "ix_outbox_office_to_created",
    OutboxRow.office_code,
    OutboxRow.envelope_to,
    OutboxRow.created_at,  # type: ignore[arg-type]
)
# The per-author, per-envelope-sender and per-office limits count an office's mail of the last hour.
Index("ix_outbox_office_created", OutboxRow.office_code, OutboxRow.created_at)  # type: ignore[arg-type]
Index("ix_outbox_office_author_created", OutboxRow.office_code, OutboxRow.author, OutboxRow.created_at)  # type: ignore[arg-type]
Index(
    "ix_outbox_office_envelope_sender_created",
    OutboxRow.office_code,
    OutboxRow.envelope_sender,
    OutboxRow.created_at,  # type: ignore[arg-type]
)


class TicketNotice(SQLModel, table=True):
    """A reminder or escalation notice sent about a ticket: at most one per ticket, clock round
    and level (0 the staff reminder, 1 head of office, 2 province PST head, 3 national), written
    in the transaction that queues its mail. A fresh clock (tickets.clock_round) starts a new
    ladder; the rows of the earlier rounds stay as its history."""

    __tablename__ = "ticket_notices"
    __table_args__ = (
        UniqueConstraint("ticket_id", "clock_round", "level", name="uq_ticket_notices_ticket_round_level"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id")
    clock_round: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # tickets.clock_round
    level: int
    recipient: str
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")  # one mail may list several
    due_at: datetime = utc_column()  # the deadline it was about
    created_at: datetime = utc_column()


class DigestRow(SQLModel, table=True):
    """The digest of one manager for one local day: at most one, sent or found empty."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("manager", "day", name="uq_digests_manager_day"),)
    id: int | None = Field(default=None, primary_key=True)
    manager: str
    day: str = Field(max_length=10)  # YYYY-MM-DD in the manager's time zone
    tickets: int = 0  # tickets it reported (0: nothing to report)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")  # None: not sent (empty)
    created_at: datetime = utc_column()


# The sweep reads open tickets by deadline (reminders, escalation, digests).
Index("ix_tickets_state_due", Ticket.state, Ticket.due_at)  # type: ignore[arg-type]


class EarlyAnswer(SQLModel, table=True):
    """An officer's answer stored on no ticket because the mail it answers was not stored yet
    (the Sent folder read before the INBOX had it): one row per Message-ID it cites, looked up
    when a new ticket is opened, deleted once the answer has joined its ticket."""

    __tablename__ = "early_answers"
    __table_args__ = (Index("ix_early_answers_office_cited", "office_code", "cited_message_id"),)
    id: int | None = Field(default=None, primary_key=True)
    office_code: str = Field(foreign_key="offices.code", max_length=8)
    cited_message_id: str  # one of its In-Reply-To/References, without brackets
    message_pk: int = Field(foreign_key="messages.id", index=True)  # the answer
    answered_at: datetime = utc_column()  # when the office's server had it: the first response time
    officer: str = ""  # who answered (staff.Officer.email)
    created_at: datetime = utc_column()
