"""Every query of the project. Functions take a Session (from storage.db) and plain values.

Writes on the per-mail hot path use Core statements (insert/update) rather than the ORM unit
of work: the same tables, a fraction of the cost per mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

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
    row = s.get(MailboxCursor, (office, folder))
    return None if row is None else (row.uidvalidity, row.last_uid)


def save_cursor(s: Session, office: str, folder: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
    """Move the cursor (created on first use)."""
    done = s.execute(
        update(MailboxCursor)
        .where(MailboxCursor.office_code == office, MailboxCursor.folder == folder)  # type: ignore[arg-type]
        .values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        s.execute(
            insert(MailboxCursor).values(
                office_code=office, folder=folder, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now
            )
        )


# --- messages and tickets ----------------------------------------------------------------


def message_exists(s: Session, office: str, dedupe_key: str) -> bool:
    """Whether this office already stored this mail (same Message-ID, or same bytes)."""
    found = s.execute(
        select(MessageRow.id).where(MessageRow.office_code == office, MessageRow.dedupe_key == dedupe_key)  # type: ignore[arg-type]
    ).first()
    return found is not None


def ticket_by_message_ids(s: Session, office: str, message_ids: Sequence[str]) -> TicketRef | None:
    """The ticket of the newest stored message (ours or theirs) with one of these Message-IDs."""
    if not message_ids:
        return None
    row = s.execute(
        select(Ticket.id, Ticket.ref, Ticket.state, Ticket.requester_email)
        .join(MessageRow, MessageRow.ticket_id == Ticket.id)  # type: ignore[arg-type]
        .where(MessageRow.office_code == office, MessageRow.message_id.in_(list(message_ids)))  # type: ignore[union-attr]
        .order_by(MessageRow.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    return None if row is None else TicketRef(*row)


def ticket_by_ref(s: Session, ref: str, office: str | None = None) -> TicketRef | None:
    """A ticket by its reference (optionally only within one office)."""
    query = select(Ticket.id, Ticket.ref, Ticket.state, Ticket.requester_email).where(Ticket.ref == ref)
    if office is not None:
        query = query.where(Ticket.office_code == office)
    row = s.execute(query).first()
    return None if row is None else TicketRef(*row)


def next_ticket_seq(s: Session, office: str, year: int) -> int:
    """Hand out the next sequence number of an office's year (inside the caller's transaction)."""
    done = s.execute(
        update(TicketCounter)
        .where(TicketCounter.office_code == office, TicketCounter.year == year)  # type: ignore[arg-type]
        .values(last_seq=TicketCounter.last_seq + 1)
        .returning(TicketCounter.last_seq)
    ).first()
    if done is not None:
        return int(done[0])
    s.execute(insert(TicketCounter).values(office_code=office, year=year, last_seq=1))
    return 1


def add_ticket(s: Session, **fields: Any) -> int:
    """Insert a ticket; returns its id."""
    return int(s.execute(insert(Ticket).values(**fields).returning(Ticket.id)).scalar_one())


def add_message(s: Session, **fields: Any) -> int:
    """Insert a message (in or out); returns its id."""
    return int(s.execute(insert(MessageRow).values(**fields).returning(MessageRow.id)).scalar_one())


def note_ticket_message(s: Session, ticket_id: int, at: datetime) -> None:
    """Count one more message on a ticket and move its last activity to `at`."""
    s.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id)  # type: ignore[arg-type]
        .values(message_count=Ticket.message_count + 1, last_message_at=at)
    )


def add_dead_letter(s: Session, **fields: Any) -> bool:
    """Keep a failed mail; False if this (office, folder, uidvalidity, uid) was already kept."""
    exists = s.execute(
        select(DeadLetter.id).where(
            DeadLetter.office_code == fields["office_code"],  # type: ignore[arg-type]
            DeadLetter.folder == fields["folder"],  # type: ignore[arg-type]
            DeadLetter.uidvalidity == fields["uidvalidity"],  # type: ignore[arg-type]
            DeadLetter.uid == fields["uid"],  # type: ignore[arg-type]
        )
    ).first()
    if exists is not None:
        return False
    s.execute(insert(DeadLetter).values(**fields))
    return True


# --- outbox ----------------------------------------------------------------------------


def add_outbox(s: Session, **fields: Any) -> int:
    """Queue an outgoing message for delivery; returns the outbox id."""
    return int(
        s.execute(insert(OutboxRow).values(state="pending", **fields).returning(OutboxRow.id)).scalar_one()
    )


def due_outbox(s: Session, office: str, now: datetime, limit: int) -> list[OutboxItem]:
    """Up to `limit` due mails of an office, oldest first (not yet marked: see advance_outbox)."""
    rows = s.execute(
        select(
            OutboxRow.id,
            OutboxRow.office_code,
            OutboxRow.envelope_from,
            OutboxRow.envelope_to,
            MessageRow.raw,
            OutboxRow.attempts,
            MessageRow.message_id,
            Ticket.ref,
        )
        .join(MessageRow, MessageRow.id == OutboxRow.message_pk)  # type: ignore[arg-type]
        .outerjoin(Ticket, Ticket.id == OutboxRow.ticket_id)  # type: ignore[arg-type]
        .where(
            OutboxRow.office_code == office,  # type: ignore[arg-type]
            OutboxRow.state == "pending",  # type: ignore[arg-type]
            OutboxRow.next_attempt_at <= now,  # type: ignore[arg-type]
        )
        .order_by(OutboxRow.id)
        .limit(limit)
    ).all()
    return [OutboxItem(*row) for row in rows]


def advance_outbox(s: Session, sent_id: int | None, sending_id: int | None, now: datetime) -> None:
    """One commit per mail: record the previous mail `sent` and mark the next one `sending`
    (in flight), so a stop leaves at most one mail per sender whose fate is unknown."""
    if sent_id is not None:
        mark_sent(s, sent_id, now)
    if sending_id is not None:
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == sending_id, OutboxRow.state == "pending")  # type: ignore[arg-type]
            .values(state="sending")
        )


def release_interrupted(s: Session, office: str) -> int:
    """Put back mails a stopped process left `sending` (they are sent again); returns how many."""
    done = s.execute(
        update(OutboxRow)
        .where(OutboxRow.office_code == office, OutboxRow.state == "sending")  # type: ignore[arg-type]
        .values(state="pending")
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def mark_sent(s: Session, outbox_id: int, now: datetime) -> None:
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id)  # type: ignore[arg-type]
        .values(state="sent", sent_at=now, attempts=OutboxRow.attempts + 1, last_error="")
    )


def mark_retry(s: Session, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id)  # type: ignore[arg-type]
        .values(
            state="pending",
            attempts=OutboxRow.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


def mark_failed(s: Session, outbox_id: int, error: str) -> None:
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.id == outbox_id)  # type: ignore[arg-type]
        .values(state="failed", attempts=OutboxRow.attempts + 1, last_error=error)
    )


def next_outbox_due(s: Session, office: str) -> datetime | None:
    """When the earliest pending mail of an office is due, or None."""
    value = s.execute(
        select(func.min(OutboxRow.next_attempt_at)).where(
            OutboxRow.office_code == office,
            OutboxRow.state == "pending",  # type: ignore[arg-type]
        )
    ).scalar()
    return value  # type: ignore[no-any-return]


# --- reading for people ------------------------------------------------------------------


def list_tickets(
    s: Session, office: str | None = None, state: str | None = None, limit: int = 200
) -> list[Ticket]:
    """Tickets, newest first, optionally of one office and/or one state."""
    query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)  # type: ignore[union-attr]
    if office:
        query = query.where(Ticket.office_code == office)
    if state:
        query = query.where(Ticket.state == state)
    return list(s.execute(query).scalars())


def ticket_with_messages(
    s: Session, ref: str
) -> tuple[Ticket, list[tuple[MessageRow, OutboxRow | None]]] | None:
    """A ticket and its messages in order, each outgoing one with its delivery state."""
    ticket = s.execute(select(Ticket).where(Ticket.ref == ref)).scalar_one_or_none()
    if ticket is None:
        return None
    rows = s.execute(
        select(MessageRow, OutboxRow)
        .outerjoin(OutboxRow, OutboxRow.message_pk == MessageRow.id)  # type: ignore[arg-type]
        .where(MessageRow.ticket_id == ticket.id)
        .order_by(MessageRow.id)
    ).all()
    return ticket, [(m, o) for m, o in rows]


def counts(s: Session) -> dict[str, int]:
    """Row counts for a status line: tickets, messages, outbox by state, dead letters."""
    result = {
        "tickets": s.execute(select(func.count()).select_from(Ticket)).scalar_one(),
        "messages": s.execute(select(func.count()).select_from(MessageRow)).scalar_one(),
        "dead_letters": s.execute(select(func.count()).select_from(DeadLetter)).scalar_one(),
    }
    for state, n in s.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)):
        result[f"outbox_{state}"] = n
    return result


def messages_without_ticket(s: Session, office: str | None = None) -> list[MessageRow]:
    """Mails recorded but never put on a ticket (auto-replies, bounces, list mail)."""
    query = select(MessageRow).where(MessageRow.ticket_id.is_(None))  # type: ignore[union-attr]
    if office:
        query = query.where(MessageRow.office_code == office)
    return list(s.execute(query).scalars())
