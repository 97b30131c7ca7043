"""Which ticket a mail continues, and who is on it: what the threader reads (mailer/threader.py).

A ticket is found by the Message-IDs a mail cites, by Outlook's conversation index, or by
sender and normalised subject; its participants (requester, cc, staff) may continue it through
a guessable match; a ticket opened from a mail that pointed at another is linked to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from storage.prepared import table_of
from storage.tables import MessageRow, Ticket, TicketLink, TicketParticipant
from storage.tickets import TICKET_REF_COLUMNS, TicketRef, ticket_ref
from storage.vocabulary import Direction, MessageKind, TicketState

_T, _M, _P = table_of(Ticket), table_of(MessageRow), table_of(TicketParticipant)
_TICKETS_BY_CONVERSATION = (
    select(*TICKET_REF_COLUMNS)
    .where(
        _T.c.office_code == bindparam("office"),
        _T.c.requester_email == bindparam("sender"),
        _T.c.subject_key == bindparam("key"),
        _T.c.last_message_at >= bindparam("since"),
    )
    .order_by(_T.c.id.desc())
    .limit(bindparam("limit"))
)
_REFERENCED = (
    select(*TICKET_REF_COLUMNS, _M.c.direction, _M.c.kind)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_M.c.id.desc())
    .limit(50)
)
_TICKET_BY_CONVERSATION_INDEX = (
    select(*TICKET_REF_COLUMNS)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.conversation_index == bindparam("index"))
    .order_by(_M.c.id.desc())
    .limit(1)
)
_PARTICIPANTS = select(_P.c.email, _P.c.role).where(_P.c.ticket_id == bindparam("ticket"))
_INSERT_PARTICIPANTS = insert(_P)


def tickets_by_conversation(
    s: Session, office: str, sender: str, subject_key: str, since: datetime, limit: int = 10
) -> list[TicketRef]:
    """The tickets of this sender with this normalised subject active since `since`, newest first."""
    values = {"office": office, "sender": sender, "key": subject_key, "since": since, "limit": limit}
    return [TicketRef(*row) for row in s.connection().execute(_TICKETS_BY_CONVERSATION, values)]


class ReferenceHit(NamedTuple):
    """The ticket a mail's In-Reply-To/References point at, and whether through a Message-ID the
    desk generated itself (an ack, closing mail, notice: 128 random bits, so trusted whoever
    writes). An officer's answer is sent by their own mail client, which made its Message-ID:
    like any received mail's, it is seen by everyone it went to and may be guessable."""

    ticket: TicketRef
    ours: bool


def referenced_ticket(s: Session, office: str, message_ids: Sequence[str]) -> ReferenceHit | None:
    """The ticket of the newest stored message with one of these Message-IDs, preferring the
    desk's own (a reply to our mail is ours whatever else it cites)."""
    if not message_ids:
        return None
    rows = s.connection().execute(_REFERENCED, {"office": office, "ids": list(message_ids)}).all()
    for row in rows:
        if row[4] == Direction.OUT and row[5] != MessageKind.STAFF_ANSWER:
            return ReferenceHit(ticket_ref(row), True)
    return ReferenceHit(ticket_ref(rows[0]), False) if rows else None


def ticket_by_conversation_index(s: Session, office: str, index: str) -> TicketRef | None:
    """The ticket of the newest message of the office with this Outlook conversation index."""
    row = s.connection().execute(_TICKET_BY_CONVERSATION_INDEX, {"office": office, "index": index}).first()
    return None if row is None else TicketRef(*row)


def ticket_texts(s: Session, ticket_ids: Sequence[int], limit: int = 200) -> list[tuple[int, str]]:
    """[(ticket id, body text)] of the incoming mails of these tickets, newest first."""
    rows = s.execute(
        select(col(MessageRow.ticket_id), col(MessageRow.body_text))
        .where(col(MessageRow.ticket_id).in_(list(ticket_ids)), col(MessageRow.direction) == Direction.IN)
        .order_by(col(MessageRow.id).desc())
        .limit(limit)
    )
    return [(int(t), text) for t, text in rows]


# --- the people on a ticket ------------------------------------------------------------------


def ticket_participants(s: Session, ticket_id: int) -> dict[str, str]:
    """The people on a ticket: {email: role} (role: requester | cc | staff)."""
    return {email: role for email, role in s.connection().execute(_PARTICIPANTS, {"ticket": ticket_id})}


def add_participants(
    s: Session, ticket_id: int, people: dict[str, str], at: datetime, known: Iterable[str] = ()
) -> None:
    """Put people ({email: role}) on a ticket; `known` are already on it and skipped."""
    skip = set(known)
    rows = [
        {"ticket_id": ticket_id, "email": email, "role": role, "added_at": at}
        for email, role in people.items()
        if email and email not in skip
    ]
    if rows:
        s.connection().execute(_INSERT_PARTICIPANTS, rows)


def add_staff(s: Session, ticket_id: int, email: str, at: datetime) -> None:
    """Put an officer on a ticket (their mails then continue it); an existing entry becomes staff."""
    email = email.strip().lower()
    known = ticket_participants(s, ticket_id)
    if email in known:
        s.execute(
            update(TicketParticipant)
            .where(col(TicketParticipant.ticket_id) == ticket_id, col(TicketParticipant.email) == email)
            .values(role="staff")
        )
    else:
        add_participants(s, ticket_id, {email: "staff"}, at)


# --- links between tickets -------------------------------------------------------------------


def link_tickets(s: Session, ticket_id: int, linked_ticket_id: int, reason: str, at: datetime) -> None:
    """Record that ticket `ticket_id` was opened from a mail pointing at `linked_ticket_id`."""
    s.execute(
        insert(TicketLink).values(
            ticket_id=ticket_id, linked_ticket_id=linked_ticket_id, reason=reason, created_at=at
        )
    )


def linked_ticket_of(s: Session, linked_ticket_id: int, requester: str) -> TicketRef | None:
    """The newest open (not closed) ticket of `requester` that was opened from `linked_ticket_id`."""
    row = s.execute(
        select(col(Ticket.id), col(Ticket.ref), col(Ticket.state), col(Ticket.requester_email))
        .join(TicketLink, col(TicketLink.ticket_id) == col(Ticket.id))
        .where(
            col(TicketLink.linked_ticket_id) == linked_ticket_id,
            col(Ticket.requester_email) == requester,
            col(Ticket.state) != TicketState.CLOSED,
        )
        .order_by(col(Ticket.id).desc())
        .limit(1)
    ).first()
    return None if row is None else TicketRef(*row)


def ticket_links(s: Session, ticket_id: int) -> list[tuple[str, str, str]]:
    """Links of a ticket both ways: [(direction, other ref, reason)], direction "from" when this
    ticket was opened from the other one, "to" when the other was opened from this one."""
    out = s.execute(
        select(col(Ticket.ref), col(TicketLink.reason))
        .join(TicketLink, col(TicketLink.linked_ticket_id) == col(Ticket.id))
        .where(col(TicketLink.ticket_id) == ticket_id)
        .order_by(col(TicketLink.id))
    ).all()
    back = s.execute(
        select(col(Ticket.ref), col(TicketLink.reason))
        .join(TicketLink, col(TicketLink.ticket_id) == col(Ticket.id))
        .where(col(TicketLink.linked_ticket_id) == ticket_id)
        .order_by(col(TicketLink.id))
    ).all()
    return [("from", ref, reason) for ref, reason in out] + [("to", ref, reason) for ref, reason in back]
