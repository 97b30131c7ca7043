"""one stored form for every datetime on SQLite

Revision ID: 0011
Revises: 0010

SQLite keeps datetimes as text and compares them as text. The ORM writes
'YYYY-MM-DD HH:MM:SS.ffffff'; the prepared hot statements of storage/repo.py wrote
'YYYY-MM-DD HH:MM:SS' for a time on the whole second (the driver's own adapter), and such a
value compares as earlier than the same instant in the long form. They now write the long form
too; this brings the rows written before into it. PostgreSQL has a real timestamp type:
nothing to do there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        if table.startswith("ticket_search") or table == "alembic_version":
            continue
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.DateTime):
                name = column["name"]
                op.execute(
                    f'UPDATE "{table}" SET "{name}" = "{name}" || \'.000000\' WHERE length("{name}") = 19'
                )


def downgrade() -> None:
    pass  # the long form is what every writer produces now
