"""Counts for people: `mailer status` (mailer/status.py) and the bench. Read by a person or a
monitoring timer, never on the per-mail path. (Listings of one aggregate live with it:
tickets.list_tickets, outbox.deliveries, dead_letters.dead_letters.)"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

from storage.outbox import SHOWN_STATE
from storage.prepared import table_of
from storage.tables import DeadLetter, MessageRow, OutboxRow, Ticket
from storage.vocabulary import OutboxState, TicketState

_O, _T, _M = table_of(OutboxRow), table_of(Ticket), table_of(MessageRow)


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


class OutboxCount(NamedTuple):
    """One office's deliveries in one shown state: how many, the oldest one's creation, how
    many are late (due before `late_before` and not sent) and failed since `failed_since`."""

    office_code: str
    state: str  # a ShownOutboxState: pending | deferred | sending | sent | failed | suppressed
    total: int
    oldest_created_at: datetime | None
    late: int
    recent_failures: int


def outbox_overview(s: Session, late_before: datetime, failed_since: datetime) -> list[OutboxCount]:
    """Per office and shown state (ShownOutboxState), the counts of `mailer status`."""
    shown = SHOWN_STATE.label("shown")
    late = and_(
        _O.c.state.in_((OutboxState.PENDING, OutboxState.SENDING)), _O.c.next_attempt_at < late_before
    )
    recent = and_(_O.c.state == OutboxState.FAILED, _O.c.failed_at >= failed_since)
    rows = s.connection().execute(
        select(
            _O.c.office_code,
            shown,
            func.count(),
            func.min(_O.c.created_at),
            func.sum(case((late, 1), else_=0)),
            func.sum(case((recent, 1), else_=0)),
        ).group_by(_O.c.office_code, shown)
    )
    return [
        OutboxCount(str(o), str(st), int(n), old, int(late or 0), int(failed or 0))
        for o, st, n, old, late, failed in rows
    ]


def outbox_by_kind(s: Session) -> list[tuple[str, str, str, int]]:
    """(office, kind, shown state, count) of every outbox row: acknowledgements sent, deferred,
    failed… for the metrics endpoint."""
    shown = SHOWN_STATE.label("shown")
    rows = s.connection().execute(
        select(_O.c.office_code, _M.c.kind, shown, func.count())
        .join(_M, _M.c.id == _O.c.message_pk)
        .group_by(_O.c.office_code, _M.c.kind, shown)
    )
    return [(str(o), str(k), str(st), int(n)) for o, k, st, n in rows]


def ticket_overview(s: Session, now: datetime) -> dict[str, dict[str, int]]:
    """Per office, tickets by state and "overdue" (open, deadline passed):
    {office_code: {"open": n, "waiting": n, …, "overdue": n}}."""
    found: dict[str, dict[str, int]] = {}
    conn = s.connection()
    for office, state, n in conn.execute(
        select(_T.c.office_code, _T.c.state, func.count()).group_by(_T.c.office_code, _T.c.state)
    ):
        found.setdefault(str(office), {})[str(state)] = int(n)
    late = select(_T.c.office_code, func.count()).where(_T.c.state == TicketState.OPEN, _T.c.due_at < now)
    for office, n in conn.execute(late.group_by(_T.c.office_code)):
        found.setdefault(str(office), {})["overdue"] = int(n)
    return found
