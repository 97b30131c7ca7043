"""connection_health: each mailbox's and SMTP server's last success and last error

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.tables

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'connection_health',
        sa.Column('office_code', sa.String(length=8), nullable=False),
        sa.Column('channel', sa.String(length=40), nullable=False),
        sa.Column('last_ok_at', storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column('failing_since', storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=False, server_default=''),
        sa.Column('last_error_at', storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['office_code'], ['offices.code']),
        sa.PrimaryKeyConstraint('office_code', 'channel'),
    )


def downgrade() -> None:
    op.drop_table('connection_health')
