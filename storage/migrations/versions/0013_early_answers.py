"""early answers: an officer's answer stored before the request it cites

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.tables


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('early_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('cited_message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=False),
    sa.Column('answered_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('officer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ),
    sa.ForeignKeyConstraint(['office_code'], ['offices.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('early_answers', schema=None) as batch_op:
        batch_op.create_index('ix_early_answers_office_cited', ['office_code', 'cited_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_early_answers_message_pk'), ['message_pk'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('early_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_early_answers_message_pk'))
        batch_op.drop_index('ix_early_answers_office_cited')

    op.drop_table('early_answers')
