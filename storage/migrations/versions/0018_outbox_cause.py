"""outbox.author, outbox.envelope_sender: who caused an automatic mail, for the hourly limits

Revision ID: 0018
Revises: 0017

The From and Return-Path of the incoming mail that caused an ack or a complaint notice, so that
the limits count per author and per envelope sender, not only per recipient (issue 13), and
indexes for counting an office's mail of the last hour (in all, by author, by envelope sender).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('envelope_sender', sqlmodel.sql.sqltypes.AutoString(), server_default='', nullable=False))
        batch_op.create_index('ix_outbox_office_created', ['office_code', 'created_at'], unique=False)
        batch_op.create_index(
            'ix_outbox_office_author_created', ['office_code', 'author', 'created_at'], unique=False
        )
        batch_op.create_index(
            'ix_outbox_office_envelope_sender_created', ['office_code', 'envelope_sender', 'created_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_office_envelope_sender_created')
        batch_op.drop_index('ix_outbox_office_author_created')
        batch_op.drop_index('ix_outbox_office_created')
        batch_op.drop_column('envelope_sender')
        batch_op.drop_column('author')
