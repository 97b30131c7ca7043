"""The monthly report's reading (every ticket of an office and its history up to the end of the
month) and its deliveries: at most one per (month, recipient, scope). mailer/monthly.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlmodel import Session, col

from storage.tables import ReportDelivery, Ticket, TicketEvent


def tickets_received_before(s: Session, office: str, until: datetime) -> list[Ticket]:
    """Every ticket of an office received before `until`."""
    query = (
        select(Ticket)
        .where(col(Ticket.office_code) == office, col(Ticket.received_at) < until)
        .order_by(col(Ticket.id))
    )
    return list(s.execute(query).scalars())


def first_received_at(s: Session, office: str) -> datetime | None:
    """When the office's first mail that the desk holds was received; None before any."""
    return s.execute(
        select(func.min(col(Ticket.received_at))).where(col(Ticket.office_code) == office)
    ).scalar()


def ticket_histories(s: Session, office: str, until: datetime) -> dict[int, list[tuple[datetime, str, str]]]:
    """{ticket id: [(at, event, state after), …]} of an office's events before `until`, oldest first."""
    rows = s.execute(
        select(
            col(TicketEvent.ticket_id), col(TicketEvent.at), col(TicketEvent.event), col(TicketEvent.state)
        )
        .join(Ticket, col(Ticket.id) == col(TicketEvent.ticket_id))
        .where(col(Ticket.office_code) == office, col(TicketEvent.at) < until)
        .order_by(col(TicketEvent.id))
    ).all()
    out: dict[int, list[tuple[datetime, str, str]]] = {}
    for ticket_id, at, event, state in rows:
        out.setdefault(int(ticket_id), []).append((at, event, state))
    return out


def report_delivered(s: Session, month: str, recipient: str, scope: str) -> bool:
    """Whether the report of `month` (YYYY-MM) on `scope` (an office code) was queued for `recipient`."""
    key = (month, recipient, scope)
    return s.get(ReportDelivery, key) is not None


def add_report_delivery(
    s: Session, month: str, recipient: str, scope: str, outbox_id: int | None, at: datetime
) -> None:
    """Note a monthly report queued (the primary key makes a second one fail)."""
    s.execute(
        insert(ReportDelivery).values(
            month=month, recipient=recipient, scope=scope, outbox_id=outbox_id, queued_at=at
        )
    )
