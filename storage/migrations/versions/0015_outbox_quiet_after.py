"""outbox.quiet_after: from when a queued mail waits out the quiet hours of the night

Revision ID: 0015
Revises: 0014

A new outbox state, `suppressed` (found at send time no longer to go), fits the existing
column (10 characters): no change for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet_after', storage.tables.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('quiet_after')
