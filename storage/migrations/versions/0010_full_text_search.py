"""full-text search of closed tickets

Revision ID: 0010
Revises: 0006

The index is not a model: on SQLite it is an FTS5 virtual table (rowid = ticket id), on
PostgreSQL a table with a tsvector and a GIN index. storage.db.include_name keeps the
autogenerate comparison away from it.
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE ticket_search USING fts5("
            "subject, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            "CREATE TABLE ticket_search ("
            " ticket_id INTEGER PRIMARY KEY REFERENCES tickets (id),"
            " subject TEXT NOT NULL,"
            " body TEXT NOT NULL,"
            " document TSVECTOR GENERATED ALWAYS AS"
            "  (setweight(to_tsvector('simple', subject), 'A') || to_tsvector('simple', body)) STORED)"
        )
        op.execute("CREATE INDEX ix_ticket_search_document ON ticket_search USING GIN (document)")


def downgrade() -> None:
    op.execute("DROP TABLE ticket_search")
