"""What the sweep reads and writes over time: reminders and escalation notices, managers'
digests, closing quiet answered tickets (mailer/sweep.py, mailer/closing.py).

Open tickets are read by deadline (index ix_tickets_state_due). A "group" is (office codes,
cutoff): the offices whose calendars put the same cutoff on this sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import and_, case, exists, func, insert, or_, select, update
from sqlmodel import Session, col

from storage.prepared import rowcount, table_of
from storage.search import index_ticket_text
from storage.tables import DigestRow, MessageRow, Ticket, TicketEvent, TicketNotice
from storage.vocabulary import Direction, MessageKind, TicketState, WithheldEvent

Groups = Sequence[tuple[Sequence[str], datetime]]  # [(office codes, cutoff)]


class DueTicket(NamedTuple):
    """An open ticket as notices and digests show it."""

    id: int
    ref: str
    office_code: str
    requester_email: str
    requester_name: str
    subject: str
    received_at: datetime
    due_at: datetime
    last_officer: str
    clock_round: int


_T, _M = table_of(Ticket), table_of(MessageRow)
_N, _D, _E = table_of(TicketNotice), table_of(DigestRow), table_of(TicketEvent)
_DUE_COLUMNS = (
    _T.c.id, _T.c.ref, _T.c.office_code, _T.c.requester_email, _T.c.requester_name, _T.c.subject,
    _T.c.received_at, _T.c.due_at, _T.c.last_officer, _T.c.clock_round,
)  # fmt: skip


def _by_cutoff(groups: Groups) -> Any:
    """Open tickets whose office is in a group and whose deadline is at or before its cutoff."""
    return and_(
        _T.c.state == TicketState.OPEN,
        or_(*(and_(_T.c.office_code.in_(list(codes)), _T.c.due_at <= cutoff) for codes, cutoff in groups)),
    )


# --- reminders and escalation notices -------------------------------------------------------


def notice_candidates(
    s: Session, level: int, groups: Groups, after: datetime | None = None, limit: int = 10_000
) -> list[DueTicket]:
    """Open tickets that reached `level` (deadline at or before their group's cutoff; after
    `after` when given) and have no notice of that level in their clock's current round yet,
    earliest deadline first."""
    if not groups:
        return []
    noticed = exists().where(
        _N.c.ticket_id == _T.c.id, _N.c.clock_round == _T.c.clock_round, _N.c.level == level
    )
    query = select(*_DUE_COLUMNS).where(_by_cutoff(groups), ~noticed)
    if after is not None:
        query = query.where(_T.c.due_at > after)
    rows = s.connection().execute(query.order_by(_T.c.due_at, _T.c.id).limit(limit))
    return [DueTicket._make(row) for row in rows]


class NewNotice(TypedDict):
    """The columns of a notice row (storage.tables.TicketNotice but id)."""

    ticket_id: int
    clock_round: int
    level: int  # 0 the staff reminder, 1 head of office, 2 province PST head, 3 national
    recipient: str
    outbox_id: int | None
    due_at: datetime  # the deadline it was about
    created_at: datetime


def add_notices(s: Session, rows: Sequence[NewNotice]) -> None:
    """Record notices; the unique (ticket, round, level) makes a second one fail the caller's
    transaction."""
    if rows:
        s.connection().execute(insert(_N), list(rows))


class NoticeSent(NamedTuple):
    """A notice about a ticket, as `mailer show` lists it."""

    clock_round: int
    level: int
    recipient: str
    due_at: datetime  # the deadline it was about
    created_at: datetime


def notices_of(s: Session, ticket_id: int) -> list[NoticeSent]:
    """The notices sent about a ticket, by round and level."""
    rows = s.connection().execute(
        select(_N.c.clock_round, _N.c.level, _N.c.recipient, _N.c.due_at, _N.c.created_at)
        .where(_N.c.ticket_id == ticket_id)
        .order_by(_N.c.clock_round, _N.c.level)
    )
    return [NoticeSent(int(r), int(level), str(who), due, at) for r, level, who, due, at in rows]


_EXCERPT_SOURCE_CHARS = 2000


def request_texts(s: Session, ticket_ids: Sequence[int]) -> dict[int, str]:
    """The start (2,000 characters) of the newest request or follow-up of each ticket, for the
    one-line excerpts of notices and digests: {ticket_id: text}."""
    if not ticket_ids:
        return {}
    newest = (
        select(func.max(_M.c.id))
        .where(
            _M.c.ticket_id.in_(list(ticket_ids)),
            _M.c.direction == Direction.IN,
            _M.c.kind.in_((MessageKind.REQUEST, MessageKind.FOLLOWUP)),
        )
        .group_by(_M.c.ticket_id)
    )
    head = func.substr(_M.c.body_text, 1, _EXCERPT_SOURCE_CHARS)  # an excerpt needs only the start
    rows = s.connection().execute(select(_M.c.ticket_id, head).where(_M.c.id.in_(newest)))
    return {int(ticket): str(text) for ticket, text in rows}


# --- managers' digests ----------------------------------------------------------------------


def digest_done(s: Session, manager: str, day: str) -> bool:
    """Whether the manager's digest of this local day was already sent (or found empty)."""
    query = select(_D.c.id).where(_D.c.manager == manager, _D.c.day == day)
    return s.connection().execute(query).first() is not None


def digests_done(s: Session, days: Iterable[str]) -> set[tuple[str, str]]:
    """The (manager, day) of every digest already sent or found empty on these local days."""
    query = select(_D.c.manager, _D.c.day).where(_D.c.day.in_(list(days)))
    return {(str(m), str(d)) for m, d in s.connection().execute(query)}


def add_digest(
    s: Session, manager: str, day: str, tickets: int, outbox_id: int | None, now: datetime
) -> None:
    """Record a manager's digest of a day (unique per manager and day)."""
    values = {"manager": manager, "day": day, "tickets": tickets, "outbox_id": outbox_id, "created_at": now}
    s.connection().execute(insert(_D).values(**values))


def digest_counts(s: Session, groups: Groups, now: datetime) -> dict[str, tuple[int, int]]:
    """Per office, (overdue, due later today) among open tickets due by the group's cutoff (the
    end of the office's day): {office_code: (overdue, due_today)}."""
    if not groups:
        return {}
    overdue = func.sum(case((_T.c.due_at <= now, 1), else_=0))
    query = (
        select(_T.c.office_code, overdue, func.count()).where(_by_cutoff(groups)).group_by(_T.c.office_code)
    )
    return {code: (int(late), int(total) - int(late)) for code, late, total in s.connection().execute(query)}


def digest_tickets(s: Session, groups: Groups, per_office: int) -> list[DueTicket]:
    """The first `per_office` open tickets of each office due by the group's cutoff, earliest
    deadline first within an office."""
    if not groups:
        return []
    rank = (
        func.row_number().over(partition_by=_T.c.office_code, order_by=(_T.c.due_at, _T.c.id)).label("rank")
    )
    inner = select(*_DUE_COLUMNS, rank).where(_by_cutoff(groups)).subquery()
    query = select(*(inner.c[c.name] for c in _DUE_COLUMNS)).where(inner.c.rank <= per_office)
    rows = s.connection().execute(query.order_by(inner.c.office_code, inner.c.due_at, inner.c.id))
    return [DueTicket(*row) for row in rows]


# --- closing answered tickets that went quiet ------------------------------------------------


class QuietTicket(NamedTuple):
    """An answered ticket nobody wrote on since `cutoff`: what its closing mail needs."""

    id: int
    ref: str
    requester_email: str
    requester_name: str
    subject: str
    language: str
    kind: str
    resolution: str  # answered | thanks | spam | duplicate | closed


_QUIET_COLUMNS = (
    col(Ticket.id),
    col(Ticket.ref),
    col(Ticket.requester_email),
    col(Ticket.requester_name),
    col(Ticket.subject),
    col(Ticket.language),
    col(Ticket.kind),
    col(Ticket.resolution),
)


def closing_facts(s: Session, ticket_id: int) -> QuietTicket:
    """What a ticket's closing mail needs (an officer closed it: quiet or not)."""
    return QuietTicket(*s.execute(select(*_QUIET_COLUMNS).where(col(Ticket.id) == ticket_id)).one())


def quiet_answered_tickets(s: Session, office: str, cutoff: datetime, limit: int = 100) -> list[QuietTicket]:
    """Up to `limit` tickets of an office answered, with no state change and no mail since `cutoff`."""
    rows = s.execute(
        select(*_QUIET_COLUMNS)
        .where(
            col(Ticket.office_code) == office,
            col(Ticket.state) == TicketState.ANSWERED,
            col(Ticket.state_changed_at) <= cutoff,
            col(Ticket.last_message_at) <= cutoff,
        )
        .order_by(col(Ticket.id))
        .limit(limit)
    ).all()
    return [QuietTicket(*row) for row in rows]


def close_quiet_ticket(s: Session, ticket_id: int, at: datetime, cutoff: datetime) -> bool:
    """Close a ticket if it is still answered and quiet since `cutoff` (a reply may have come in
    since it was listed); its resolution is kept, its text put in the search index. Returns
    whether it was closed."""
    done = s.execute(
        update(Ticket)
        .where(
            col(Ticket.id) == ticket_id,
            col(Ticket.state) == TicketState.ANSWERED,
            col(Ticket.state_changed_at) <= cutoff,
            col(Ticket.last_message_at) <= cutoff,
        )
        .values(state=TicketState.CLOSED, state_changed_at=at, closed_at=at)
    )
    if rowcount(done) != 1:
        return False
    index_ticket_text(s, ticket_id)
    return True


def last_digests(s: Session, managers: Iterable[str]) -> dict[str, datetime]:
    """When each of these managers' latest digest was recorded (sent or found empty):
    {manager: created_at}; a manager without one is absent."""
    query = select(_D.c.manager, func.max(_D.c.created_at)).where(_D.c.manager.in_(list(managers)))
    rows = s.connection().execute(query.group_by(_D.c.manager)).all()
    return {str(m): at for m, at in rows if at is not None}  # max() keeps the column's type: aware UTC


def withheld_notices(s: Session, since: dict[str, datetime]) -> dict[str, list[tuple[str, int]]]:
    """Per office, the complaints whose notice to the head an hourly limit withheld since the
    office's moment in `since`, counted by sender (the event's actor), most first:
    {office_code: [(sender, count), …]}."""
    if not since:
        return {}
    windows = [and_(_T.c.office_code == code, _E.c.at >= at) for code, at in since.items()]
    query = (
        select(_T.c.office_code, _E.c.actor, func.count())
        .select_from(_E.join(_T, _T.c.id == _E.c.ticket_id))
        .where(_E.c.event == WithheldEvent.COMPLAINT_NOTICE, or_(*windows))
        .group_by(_T.c.office_code, _E.c.actor)
        .order_by(func.count().desc(), _E.c.actor)
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for code, actor, count in s.connection().execute(query):
        found.setdefault(str(code), []).append((str(actor), int(count)))
    return found
