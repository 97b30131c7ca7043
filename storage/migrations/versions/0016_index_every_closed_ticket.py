"""every closed ticket in the search index, whatever closed it

Revision ID: 0016
Revises: 0015

Until now a ticket closed by the quiet-days sweep (most of them) was never indexed: only the
closings of storage.tickets did it. The sweep indexes now; this puts the ones it closed before
into the index.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text
from sqlmodel import Session

from storage.search import index_ticket_text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    key = "rowid" if conn.dialect.name == "sqlite" else "ticket_id"
    missing = conn.execute(
        text(f"SELECT id FROM tickets WHERE state = 'closed' AND id NOT IN (SELECT {key} FROM ticket_search)")
    ).scalars()
    s = Session(bind=conn)
    for ticket_id in list(missing):
        index_ticket_text(s, int(ticket_id))


def downgrade() -> None:
    pass  # the index only gains rows that belong in it
