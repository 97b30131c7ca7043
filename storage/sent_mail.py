"""The mail this office sent, found again: the mail a bounce or an abuse report is about, the
mail an officer's reply cites (a notice, a closing mail), a queued mail by its Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlmodel import Session, col

from storage.prepared import table_of
from storage.tables import MessageRow, OutboxRow, Ticket
from storage.tickets import TICKET_REF_COLUMNS, TicketRef, ticket_ref
from storage.vocabulary import Direction, MessageKind

_T = table_of(Ticket)


class OutgoingRef(NamedTuple):
    """One mail we sent: its messages.id, the ticket it belongs to (or None), its recipients
    (the outbox envelope; the stored To/Cc for a mail sent by other means)."""

    message_pk: int
    ticket: TicketRef | None
    recipients: tuple[str, ...]


def _outgoing(s: Session, where: Any) -> OutgoingRef | None:
    row = s.execute(
        select(col(MessageRow.id), col(OutboxRow.envelope_to), col(MessageRow.to_emails), *TICKET_REF_COLUMNS)
        .join(OutboxRow, col(OutboxRow.message_pk) == col(MessageRow.id), isouter=True)
        .join(_T, _T.c.id == col(MessageRow.ticket_id), isouter=True)
        .where(col(MessageRow.direction) == Direction.OUT, where)
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    ticket = ticket_ref(row[3:]) if row[3] is not None else None
    recipients = (row[1],) if row[1] else tuple(a.strip() for a in str(row[2]).split(",") if a.strip())
    return OutgoingRef(int(row[0]), ticket, recipients)


def queued_by_message_ids(s: Session, office: str, message_ids: Sequence[str]) -> OutgoingRef | None:
    """The newest mail the desk itself generated and queued (an ack, closing mail, notice: an
    outbox row, not an officer's answer sent by their own client) with one of these Message-IDs
    (without brackets), or None."""
    if not message_ids:
        return None
    return _outgoing(
        s,
        (col(MessageRow.office_code) == office)
        & (col(MessageRow.message_id).in_(list(message_ids)))
        & (col(OutboxRow.id).is_not(None)),
    )


def latest_outgoing_to(s: Session, office: str, address: str, since: datetime) -> OutgoingRef | None:
    """The newest mail this office queued for `address` since `since`, or None."""
    return _outgoing(
        s,
        (col(OutboxRow.office_code) == office)
        & (col(OutboxRow.envelope_to) == address)
        & (col(OutboxRow.created_at) >= since),
    )


class QueuedMail(NamedTuple):
    """A mail we rendered into the outbox (ack, closing mail, notice…) and its ticket, if any."""

    kind: str
    ticket: TicketRef | None


def queued_mail(s: Session, office: str, message_id: str) -> QueuedMail | None:
    """The mail this office queued with this Message-ID (outbox.enqueue's dedupe key), or None."""
    row = s.execute(
        select(col(MessageRow.kind), *TICKET_REF_COLUMNS)
        .join(_T, _T.c.id == col(MessageRow.ticket_id), isouter=True)
        .where(col(MessageRow.office_code) == office, col(MessageRow.dedupe_key) == f"out:{message_id}")
        .limit(1)
    ).first()
    if row is None:
        return None
    return QueuedMail(str(row[0]), ticket_ref(row[1:]) if row[1] is not None else None)


class OurMail(NamedTuple):
    """A mail this office sent, found among a reply's Message-IDs: its row and its ticket."""

    message_pk: int
    ticket_id: int | None


def our_mail_among(
    s: Session, office: str, kinds: Sequence[MessageKind], message_ids: Sequence[str]
) -> OurMail | None:
    """The newest mail of one of these kinds (e.g. closing, notice) this office sent with one of
    these Message-IDs, or None."""
    if not message_ids:
        return None
    row = s.execute(
        select(col(MessageRow.id), col(MessageRow.ticket_id))
        .where(
            col(MessageRow.office_code) == office,
            col(MessageRow.direction) == Direction.OUT,
            col(MessageRow.kind).in_(list(kinds)),
            col(MessageRow.message_id).in_(list(message_ids)),
        )
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).first()
    return None if row is None else OurMail(int(row[0]), row[1])
