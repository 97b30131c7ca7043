"""notices once per clock round: tickets.clock_round, ticket_notices unique per (ticket, round, level)

Revision ID: 0012
Revises: 0011

A ticket's round is 1 plus its fresh-clock events so far ('replied': the requester wrote again
after an answer; 'reopened'), as mailer.lifecycle.clock_round counts them. Every notice already
sent becomes one of its ticket's current round: the upgrade sends nothing again about a ladder
already climbed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

FRESH_CLOCK_EVENTS = ("replied", "reopened")  # mailer.lifecycle.FRESH_CLOCK_EVENTS, as of this revision


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_round', sa.Integer(), server_default='1', nullable=False))
    events = ", ".join(f"'{e}'" for e in FRESH_CLOCK_EVENTS)
    op.execute(
        "UPDATE tickets SET clock_round = 1 + (SELECT count(*) FROM ticket_events e"
        f" WHERE e.ticket_id = tickets.id AND e.event IN ({events}))"
        f" WHERE id IN (SELECT ticket_id FROM ticket_events WHERE event IN ({events}))"
    )
    with op.batch_alter_table('ticket_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_round', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint('uq_ticket_notices_ticket_level', type_='unique')
        batch_op.create_unique_constraint(
            'uq_ticket_notices_ticket_round_level', ['ticket_id', 'clock_round', 'level']
        )
    op.execute(
        "UPDATE ticket_notices SET clock_round ="
        " (SELECT t.clock_round FROM tickets t WHERE t.id = ticket_notices.ticket_id)"
    )


def downgrade() -> None:
    op.execute(  # one row per (ticket, level) again: the latest round's
        "DELETE FROM ticket_notices WHERE clock_round <"
        " (SELECT max(n.clock_round) FROM ticket_notices n"
        " WHERE n.ticket_id = ticket_notices.ticket_id AND n.level = ticket_notices.level)"
    )
    with op.batch_alter_table('ticket_notices', schema=None) as batch_op:
        batch_op.drop_constraint('uq_ticket_notices_ticket_round_level', type_='unique')
        batch_op.create_unique_constraint('uq_ticket_notices_ticket_level', ['ticket_id', 'level'])
        batch_op.drop_column('clock_round')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('clock_round')
