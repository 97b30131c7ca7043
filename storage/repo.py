"""Every query of the project. Functions take a Session (from storage.db) and plain values.

The per-mail hot path runs statements built once against the tables (Core, not the ORM):
the same tables and SQL, about half the CPU per mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Result, bindparam, func, insert, select, update
from sqlmodel import Session, col

from storage.tables import (
    DeadLetter,
    MailboxCursor,
    MessageRow,
    OfficeRow,
    OutboxRow,
    Ticket,
    TicketCounter,
)


class TicketRef(NamedTuple):
    """The few facts of a ticket the pipeline needs: (id, ref, state, requester_email)."""

    id: int
    ref: str
    state: str
    requester_email: str


class OutboxItem(NamedTuple):
    """One mail to deliver: outbox id, envelope, the bytes, attempts so far, for log context."""

    id: int
    office_code: str
    envelope_from: str
    envelope_to: str
    raw: bytes
    attempts: int
    message_id: str | None
    ticket_ref: str | None


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE touched (CursorResult.rowcount; the Session types it as a plain Result)."""
    return int(getattr(result, "rowcount", 0))


# --- offices and cursors ---------------------------------------------------------------


def sync_offices(s: Session, offices: Iterable[dict[str, Any]], now: datetime) -> None:
    """Insert or update the offices of the settings (keys: code, name, email, province_code, time_zone)."""
    for office in offices:
        row = s.get(OfficeRow, office["code"])
        if row is None:
            s.add(OfficeRow(**office, updated_at=now))
        else:
            for key, value in office.items():
                setattr(row, key, value)
            row.updated_at = now


def get_cursor(s: Session, office: str, folder: str) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) of a mailbox, or None before its first pass."""
    row = s.connection().execute(_GET_CURSOR, {"office": office, "box": folder}).first()
    return None if row is None else (int(row[0]), int(row[1]))


def save_cursor(s: Session, office: str, folder: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
    """Move the cursor (created on first use)."""
    values = {
        "office": office,
        "box": folder,
        "validity": uidvalidity,
        "uid": last_uid,
        "now": now,
    }
    conn = s.connection()
    if _rowcount(conn.execute(_MOVE_CURSOR, values)) == 0:
        conn.execute(_NEW_CURSOR, values)


# --- messages and tickets ----------------------------------------------------------------
# The per-mail statements are built once, against the tables, and run on the session's
# connection: SQLAlchemy then only binds values (no per-call coercion of the ORM path).

_M, _T, _O = MessageRow.__table__, Ticket.__table__, OutboxRow.__table__  # type: ignore[attr-defined]
_C, _K = MailboxCursor.__table__, TicketCounter.__table__  # type: ignore[attr-defined]
_GET_CURSOR = select(_C.c.uidvalidity, _C.c.last_uid).where(
    _C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box")
)
_MOVE_CURSOR = (
    update(_C)
    .where(_C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box"))
    .values(uidvalidity=bindparam("validity"), last_uid=bindparam("uid"), updated_at=bindparam("now"))
)
_NEW_CURSOR = insert(_C).values(
    office_code=bindparam("office"),
    folder=bindparam("box"),
    uidvalidity=bindparam("validity"),
    last_uid=bindparam("uid"),
    updated_at=bindparam("now"),
)
_MESSAGE_EXISTS = (
    select(_M.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.dedupe_key == bindparam("key"))
    .limit(1)
)
_TICKET_COLUMNS = (_T.c.id, _T.c.ref, _T.c.state, _T.c.requester_email)
_TICKET_BY_MESSAGE_IDS = (
    select(*_TICKET_COLUMNS)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_M.c.id.desc())
    .limit(1)
)
_TICKET_BY_REF = select(*_TICKET_COLUMNS).where(_T.c.ref == bindparam("ref"))
_TICKET_BY_CONVERSATION = (
    select(*_TICKET_COLUMNS)
    .where(
        _T.c.office_code == bindparam("office"),
        _T.c.requester_email == bindparam("sender"),
        _T.c.subject_key == bindparam("key"),
        _T.c.last_message_at >= bindparam("since"),
    )
    .order_by(_T.c.id.desc())
    .limit(1)
)
_NEXT_SEQ = (
    update(_K)
    .where(_K.c.office_code == bindparam("office"), _K.c.year == bindparam("yr"))
    .values(last_seq=_K.c.last_seq + 1)
    .returning(_K.c.last_seq)
)
_FIRST_SEQ = insert(_K).values(office_code=bindparam("office"), year=bindparam("yr"), last_seq=1)
_INSERT_TICKET = insert(_T).returning(_T.c.id)
_INSERT_MESSAGE = insert(_M).returning(_M.c.id)
_INSERT_OUTBOX = insert(_O).returning(_O.c.id)
_NOTE_MESSAGE = (
    update(_T)
    .where(_T.c.id == bindparam("ticket"))
    .values(message_count=_T.c.message_count + 1, last_message_at=bindparam("at"))
)
_MARK_SENDING = (
    update(_O).where(_O.c.id == bindparam("outbox"), _O.c.state == "pending").values(state="sending")
)
_MARK_SENT = (
    update(_O)
    .where(_O.c.id == bindparam("outbox"))
    .values(state="sent", sent_at=bindparam("now"), attempts=_O.c.attempts + 1, last_error="")
)


def message_exists(s: Session, office: str, dedupe_key: str) -> bool:
    """Whether this office already stored this mail (same Message-ID and content)."""
    return s.connection().execute(_MESSAGE_EXISTS, {"office": office, "key": dedupe_key}).first() is not None


def ticket_by_message_ids(s: Session, office: str, message_ids: Sequence[str]) -> TicketRef | None:
    """The ticket of the newest stored message (ours or theirs) with one of these Message-IDs."""
    if not message_ids:
        return None
    row = s.connection().execute(_TICKET_BY_MESSAGE_IDS, {"office": office, "ids": list(message_ids)}).first()
    return None if row is None else TicketRef(*row)


def ticket_by_ref(s: Session, ref: str, office: str | None = None) -> TicketRef | None:
    """A ticket by its reference (optionally only within one office)."""
    row = s.connection().execute(_TICKET_BY_REF, {"ref": ref}).first()
    if row is None or (office is not None and not ref.startswith(f"PST-{office}-")):
        return None
    return TicketRef(*row)


def ticket_by_conversation(
    s: Session, office: str, sender: str, subject_key: str, since: datetime
) -> TicketRef | None:
    """The newest ticket of this sender with this normalised subject active since `since`."""
    values = {"office": office, "sender": sender, "key": subject_key, "since": since}
    row = s.connection().execute(_TICKET_BY_CONVERSATION, values).first()
    return None if row is None else TicketRef(*row)


def next_ticket_seq(s: Session, office: str, year: int) -> int:
    """Hand out the next sequence number of an office's year (inside the caller's transaction)."""
    conn = s.connection()
    done = conn.execute(_NEXT_SEQ, {"office": office, "yr": year}).first()
    if done is not None:
        return int(done[0])
    conn.execute(_FIRST_SEQ, {"office": office, "yr": year})
    return 1


def add_ticket(s: Session, **fields: Any) -> int:
    """Insert a ticket; returns its id."""
    return int(s.connection().execute(_INSERT_TICKET, fields).scalar_one())


def add_message(s: Session, **fields: Any) -> int:
    """Insert a message (in or out); returns its id."""
    return int(s.connection().execute(_INSERT_MESSAGE, fields).scalar_one())


def note_ticket_message(s: Session, ticket_id: int, at: datetime) -> None:
    """Count one more message on a ticket and move its last activity to `at`."""
    s.connection().execute(_NOTE_MESSAGE, {"ticket": ticket_id, "at": at})


def add_dead_letter(s: Session, **fields: Any) -> bool:
    """Keep a failed mail; False if this (office, folder, uidvalidity, uid) was already kept."""
    exists = s.execute(
        select(col(DeadLetter.id)).where(
            col(DeadLetter.office_code) == fields["office_code"],
            col(DeadLetter.folder) == fields["folder"],
            col(DeadLetter.uidvalidity) == fields["uidvalidity"],
            col(DeadLetter.uid) == fields["uid"],
        )
    ).first()
    if exists is not None:
        return False
    s.execute(insert(DeadLetter).values(**fields))
    return True


# --- outbox ----------------------------------------------------------------------------


def add_outbox(s: Session, **fields: Any) -> int:
    """Queue an outgoing message for delivery; returns the outbox id."""
    return int(s.connection().execute(_INSERT_OUTBOX, {"state": "pending", **fields}).scalar_one())


def due_outbox(s: Session, office: str, now: datetime, limit: int) -> list[OutboxItem]:
    """Up to `limit` due mails of an office, oldest first (not yet marked: see advance_outbox)."""
    rows = s.execute(
        select(
            col(OutboxRow.id),
            col(OutboxRow.office_code),
            col(OutboxRow.envelope_from),
            col(OutboxRow.envelope_to),
            col(MessageRow.raw),
            col(OutboxRow.attempts),
            col(MessageRow.message_id),
            col(Ticket.ref),
        )
        .join(MessageRow, col(MessageRow.id) == col(OutboxRow.message_pk))
        .outerjoin(Ticket, col(Ticket.id) == col(OutboxRow.ticket_id))
        .where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == "pending",
            col(OutboxRow.next_attempt_at) <= now,
        )
        .order_by(col(OutboxRow.id))
        .limit(limit)
    ).all()
    return [OutboxItem(*row) for row in rows]


def advance_outbox(conn: Connection, sent_id: int | None, sending_id: int | None, now: datetime) -> None:
    """One commit per mail: record the previous mail `sent` and mark the next one `sending`
    (in flight), so a stop leaves at most one mail per sender whose fate is unknown. Takes a
    bare connection (storage.db.statements): it runs once per mail sent."""
    if sent_id is not None:
        conn.execute(_MARK_SENT, {"outbox": sent_id, "now": now})
    if sending_id is not None:
        conn.execute(_MARK_SENDING, {"outbox": sending_id})


def release_interrupted(s: Session, office: str) -> int:
    """Put back mails a stopped process left `sending` (they are sent again); returns how many."""
    done = s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.office_code) == office, col(OutboxRow.state) == "sending")
        .values(state="pending")
    )
    return _rowcount(done)


def mark_sent(s: Session, outbox_id: int, now: datetime) -> None:
    s.connection().execute(_MARK_SENT, {"outbox": outbox_id, "now": now})


def mark_retry(s: Session, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(
            state="pending",
            attempts=col(OutboxRow.attempts) + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


def mark_failed(s: Session, outbox_id: int, error: str) -> None:
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(state="failed", attempts=col(OutboxRow.attempts) + 1, last_error=error)
    )


def next_outbox_due(s: Session, office: str) -> datetime | None:
    """When the earliest pending mail of an office is due, or None."""
    value = s.execute(
        select(func.min(col(OutboxRow.next_attempt_at))).where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == "pending",
        )
    ).scalar()
    return value


# --- reading for people ------------------------------------------------------------------


def list_tickets(
    s: Session, office: str | None = None, state: str | None = None, limit: int = 200
) -> list[Ticket]:
    """Tickets, newest first, optionally of one office and/or one state."""
    query = select(Ticket).order_by(col(Ticket.id).desc()).limit(limit)
    if office:
        query = query.where(col(Ticket.office_code) == office)
    if state:
        query = query.where(col(Ticket.state) == state)
    return list(s.execute(query).scalars())


def ticket_with_messages(
    s: Session, ref: str
) -> tuple[Ticket, list[tuple[MessageRow, OutboxRow | None]]] | None:
    """A ticket and its messages in order, each outgoing one with its delivery state."""
    ticket = s.execute(select(Ticket).where(col(Ticket.ref) == ref)).scalar_one_or_none()
    if ticket is None:
        return None
    rows = s.execute(
        select(MessageRow, OutboxRow)
        .outerjoin(OutboxRow, col(OutboxRow.message_pk) == col(MessageRow.id))
        .where(col(MessageRow.ticket_id) == ticket.id)
        .order_by(col(MessageRow.id))
    ).all()
    return ticket, [(m, o) for m, o in rows]


def counts(s: Session) -> dict[str, int]:
    """Row counts for a status line: tickets, messages, outbox by state, dead letters."""
    result = {
        "tickets": s.execute(select(func.count()).select_from(Ticket)).scalar_one(),
        "messages": s.execute(select(func.count()).select_from(MessageRow)).scalar_one(),
        "dead_letters": s.execute(select(func.count()).select_from(DeadLetter)).scalar_one(),
    }
    for state, n in s.execute(select(col(OutboxRow.state), func.count()).group_by(col(OutboxRow.state))):
        result[f"outbox_{state}"] = n
    return result
