"""Full-text search of past consultations.

The index (migration 0010) is an FTS5 table on SQLite and a tsvector table on PostgreSQL; a
ticket's subject and what the people wrote (requests, follow-ups, officers' answers and notes)
are indexed when it closes, whatever closes it (storage.tickets.close_ticket, change_ticket,
storage.sweeps.close_quiet_ticket; migration 0016 indexed those the sweep closed before).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, text
from sqlmodel import Session, col

from storage.tables import MessageRow, Ticket, UTCDateTime
from storage.vocabulary import MessageKind, TicketState

SEARCHED_KINDS = (MessageKind.REQUEST, MessageKind.FOLLOWUP, MessageKind.STAFF_ANSWER, MessageKind.STAFF_NOTE)
_MAX_INDEXED_CHARS = 20_000  # per message: enough for any answer, bounded for pasted tables


class SearchHit(NamedTuple):
    """A closed ticket found: (ref, office_code, state, closed_at, subject, snippet with the
    matches in [brackets])."""

    ref: str
    office_code: str
    state: str
    closed_at: datetime | None
    subject: str
    snippet: str


def index_ticket_text(s: Session, ticket_id: int) -> None:
    """(Re)index one ticket's text for `search_tickets`."""
    subject = s.execute(select(col(Ticket.subject)).where(col(Ticket.id) == ticket_id)).scalar_one()
    bodies = s.execute(
        select(col(MessageRow.body_trimmed))  # what each person wrote, without the quoted history
        .where(col(MessageRow.ticket_id) == ticket_id, col(MessageRow.kind).in_(SEARCHED_KINDS))
        .order_by(col(MessageRow.id))
    ).scalars()
    values = {
        "id": ticket_id,
        "subject": subject,
        "body": "\n\n".join(b[:_MAX_INDEXED_CHARS] for b in bodies),
    }
    conn = s.connection()
    if conn.dialect.name == "sqlite":
        conn.execute(text("DELETE FROM ticket_search WHERE rowid = :id"), values)
        conn.execute(
            text("INSERT INTO ticket_search (rowid, subject, body) VALUES (:id, :subject, :body)"), values
        )
    else:
        conn.execute(
            text(
                "INSERT INTO ticket_search (ticket_id, subject, body) VALUES (:id, :subject, :body) "
                "ON CONFLICT (ticket_id) DO UPDATE SET subject = excluded.subject, body = excluded.body"
            ),
            values,
        )


def search_tickets(s: Session, words: str, office: str | None = None, limit: int = 20) -> list[SearchHit]:
    """Closed tickets whose subject or text has every word (as a word or the start of one),
    best first (BM25 on SQLite, ts_rank_cd on PostgreSQL; a subject match weighs more)."""
    terms = re.findall(r"\w+", words.casefold())
    if not terms:
        return []
    conn = s.connection()
    where = f"t.state = '{TicketState.CLOSED}'" + (" AND t.office_code = :office" if office else "")
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT t.ref, t.office_code, t.state, t.closed_at, t.subject,"
            " snippet(ticket_search, 1, '[', ']', '…', 12)"
            " FROM ticket_search JOIN tickets t ON t.id = ticket_search.rowid"
            f" WHERE ticket_search MATCH :q AND {where}"
            " ORDER BY bm25(ticket_search, 4.0, 1.0) LIMIT :n"
        )
        query = " ".join(f'"{term}"*' for term in terms)
    else:
        sql = (
            "SELECT t.ref, t.office_code, t.state, t.closed_at, t.subject,"
            " ts_headline('simple', ts.body, q, 'StartSel=[, StopSel=], MaxWords=20, MinWords=8')"
            " FROM ticket_search ts JOIN tickets t ON t.id = ts.ticket_id,"
            " to_tsquery('simple', :q) q"
            f" WHERE ts.document @@ q AND {where}"
            " ORDER BY ts_rank_cd(ts.document, q) DESC, t.id DESC LIMIT :n"
        )
        query = " & ".join(f"{term}:*" for term in terms)
    typed = text(sql).columns(closed_at=UTCDateTime())
    rows = conn.execute(typed, {"q": query, "office": office, "n": limit}).all()
    return [SearchHit(r[0], r[1], r[2], r[3], r[4], " ".join(str(r[5]).split())) for r in rows]
