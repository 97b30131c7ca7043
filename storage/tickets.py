"""Tickets: opening one, moving it between states, its history (ticket_events), and reading it.

Opening a ticket and counting its mails run once per mail: prepared statements
(storage/prepared.py). The words stored (state, kind, resolution) are storage/vocabulary.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, NotRequired, TypedDict, Unpack

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from storage.prepared import Prepared, rowcount, table_of
from storage.search import index_ticket_text
from storage.tables import Ticket, TicketCounter, TicketEvent
from storage.vocabulary import Resolution, TicketKind, TicketState


class TicketRef(NamedTuple):
    """The few facts of a ticket the pipeline needs: (id, ref, state, requester_email)."""

    id: int
    ref: str
    state: str
    requester_email: str


_T, _K = table_of(Ticket), table_of(TicketCounter)
# What a TicketRef is read from (other modules join tickets and select these too).
TICKET_REF_COLUMNS = (_T.c.id, _T.c.ref, _T.c.state, _T.c.requester_email)


def ticket_ref(row: Sequence[Any]) -> TicketRef:
    """The TicketRef of a row that starts with the values of TICKET_REF_COLUMNS."""
    return TicketRef(*row[:4])


_TICKET_BY_REF = Prepared(select(*TICKET_REF_COLUMNS).where(_T.c.ref == bindparam("ref")))
_NEXT_SEQ = Prepared(
    update(_K)
    .where(_K.c.office_code == bindparam("office"), _K.c.year == bindparam("yr"))
    .values(last_seq=_K.c.last_seq + 1)
    .returning(_K.c.last_seq)
)
_FIRST_SEQ = Prepared(insert(_K).values(office_code=bindparam("office"), year=bindparam("yr"), last_seq=1))
_INSERT_TICKET = Prepared(insert(_T).returning(_T.c.id), _T)
_NOTE_MESSAGE = Prepared(
    update(_T)
    .where(_T.c.id == bindparam("ticket"))
    .values(message_count=_T.c.message_count + 1, last_message_at=bindparam("at"))
)


def ticket_by_ref(s: Session, ref: str, office: str | None = None) -> TicketRef | None:
    """A ticket by its reference (optionally only within one office)."""
    row = _TICKET_BY_REF.run(s, {"ref": ref}).fetchone()
    if row is None or (office is not None and not ref.startswith(f"PST-{office}-")):
        return None
    return TicketRef(*row)


def next_ticket_seq(s: Session, office: str, year: int) -> int:
    """Hand out the next sequence number of an office's year (inside the caller's transaction)."""
    done = _NEXT_SEQ.run(s, {"office": office, "yr": year}).fetchone()
    if done is not None:
        return int(done[0])
    _FIRST_SEQ.run(s, {"office": office, "yr": year})
    return 1


class NewTicket(TypedDict):
    """The columns of a new ticket (storage.tables.Ticket). A column left out takes the
    table's default (kind request, language id, clock_round 1, "" and None otherwise)."""

    ref: str
    office_code: str
    state: TicketState
    requester_email: str
    received_at: datetime
    due_at: datetime
    last_message_at: datetime
    created_at: datetime
    kind: NotRequired[TicketKind]
    requester_name: NotRequired[str]
    subject: NotRequired[str]
    subject_key: NotRequired[str]
    language: NotRequired[str]
    clock_round: NotRequired[int]
    first_response_at: NotRequired[datetime | None]
    first_response_by: NotRequired[str]
    last_officer: NotRequired[str]
    resolution: NotRequired[Resolution]
    state_changed_at: NotRequired[datetime | None]
    closed_at: NotRequired[datetime | None]
    message_count: NotRequired[int]


def add_ticket(s: Session, **ticket: Unpack[NewTicket]) -> int:
    """Insert a ticket; returns its id."""
    return int(_INSERT_TICKET.run(s, dict(ticket)).fetchone()[0])


def note_ticket_message(s: Session, ticket_id: int, at: datetime) -> None:
    """Count one more message on a ticket and move its last activity to `at`."""
    _NOTE_MESSAGE.run(s, {"ticket": ticket_id, "at": at})


def change_ticket(
    s: Session,
    ticket_id: int,
    *,
    state: TicketState,
    at: datetime,
    resolution: Resolution | None = None,
    due_at: datetime | None = None,
    officer: str | None = None,
    first_response: bool = False,
    fresh_clock: bool = False,
) -> None:
    """Move a ticket to `state` (at `at`); optionally set its resolution, give it a new `due_at`
    (`fresh_clock`: a new round of the clock, whose notices start again from the reminder),
    note the officer who handled it and, if it has none yet, its first response."""
    values: dict[str, Any] = {"state": state, "state_changed_at": at}
    if fresh_clock:
        values["clock_round"] = col(Ticket.clock_round) + 1
    if state == TicketState.CLOSED:
        values["closed_at"] = at  # the reopen window counts from here
    if resolution is not None:
        values["resolution"] = resolution
    if due_at is not None:
        values["due_at"] = due_at
    if officer is not None:
        values["last_officer"] = officer
    s.execute(update(Ticket).where(col(Ticket.id) == ticket_id).values(**values))
    if state == TicketState.CLOSED:
        index_ticket_text(s, ticket_id)
    if first_response and officer is not None:
        s.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.first_response_at).is_(None))
            .values(first_response_at=at, first_response_by=officer)
        )


def close_ticket(s: Session, ticket_id: int, at: datetime) -> None:
    """Set a ticket closed as of `at` (and put its text in the search index)."""
    s.execute(
        update(Ticket).where(col(Ticket.id) == ticket_id).values(state=TicketState.CLOSED, closed_at=at)
    )
    index_ticket_text(s, ticket_id)


def ticket_closed_at(s: Session, ticket_id: int) -> datetime | None:
    """When a closed ticket was closed (its last mail's time if the closing did not say)."""
    row = s.execute(
        select(col(Ticket.closed_at), col(Ticket.last_message_at)).where(col(Ticket.id) == ticket_id)
    ).first()
    return None if row is None else row[0] or row[1]


def add_ticket_event(
    s: Session,
    *,
    ticket_id: int,
    at: datetime,
    event: str,
    state: TicketState,
    message_pk: int | None = None,
    actor: str = "",
    detail: str = "",
) -> None:
    """Record one change of a ticket: `event` (answered | waiting | resumed | closed | reopened |
    note | …) at `at`, the `state` after it, caused by mail `message_pk`, made by `actor`."""
    s.execute(
        insert(TicketEvent).values(
            ticket_id=ticket_id,
            message_pk=message_pk,
            at=at,
            event=event,
            state=state,
            actor=actor,
            detail=detail,
        )
    )


def ticket_clock(s: Session, ticket_id: int) -> tuple[datetime, list[tuple[datetime, str, str]]]:
    """A ticket's receipt time and its history as (at, event, state after), oldest first: what
    the SLA clock is computed from (lifecycle.clock_basis)."""
    received = s.execute(select(col(Ticket.received_at)).where(col(Ticket.id) == ticket_id)).scalar_one()
    rows = s.execute(
        select(col(TicketEvent.at), col(TicketEvent.event), col(TicketEvent.state))
        .where(col(TicketEvent.ticket_id) == ticket_id)
        .order_by(col(TicketEvent.id))
    ).all()
    return received, [(at, event, state) for at, event, state in rows]


def ticket_events(s: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's history, oldest first."""
    query = select(TicketEvent).where(col(TicketEvent.ticket_id) == ticket_id).order_by(col(TicketEvent.id))
    return list(s.execute(query).scalars())


def ticket_resolution(s: Session, ticket_id: int) -> str:
    """How a ticket was settled ("" while it is not): storage.vocabulary.Resolution's words."""
    return str(s.execute(select(col(Ticket.resolution)).where(col(Ticket.id) == ticket_id)).scalar_one())


def ticket_kind(s: Session, ticket_id: int) -> str:
    """request | complaint."""
    return str(s.execute(select(col(Ticket.kind)).where(col(Ticket.id) == ticket_id)).scalar_one())


class ComplaintFacts(NamedTuple):
    """What a complaint inside a conversation needs of its ticket."""

    kind: str  # request | complaint
    language: str
    due_at: datetime


def complaint_facts(s: Session, ticket_id: int) -> ComplaintFacts:
    """The ticket's kind, language and deadline."""
    row = s.execute(
        select(col(Ticket.kind), col(Ticket.language), col(Ticket.due_at)).where(col(Ticket.id) == ticket_id)
    ).one()
    return ComplaintFacts(str(row[0]), str(row[1]), row[2])


def make_complaint(s: Session, ticket_id: int, due_at: datetime) -> bool:
    """Turn a request into a complaint with the complaint's deadline; False (nothing changed)
    when it already is one, so a conversation becomes a complaint once."""
    done = s.execute(
        update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.kind) != TicketKind.COMPLAINT)
        .values(kind=TicketKind.COMPLAINT, due_at=due_at)
    )
    return rowcount(done) == 1


def list_tickets(
    s: Session, office: str | None = None, state: TicketState | None = None, limit: int = 200
) -> list[Ticket]:
    """Tickets, newest first, optionally of one office and/or one state."""
    query = select(Ticket).order_by(col(Ticket.id).desc()).limit(limit)
    if office:
        query = query.where(col(Ticket.office_code) == office)
    if state:
        query = query.where(col(Ticket.state) == state)
    return list(s.execute(query).scalars())
