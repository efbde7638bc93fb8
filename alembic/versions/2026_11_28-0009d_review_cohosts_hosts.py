"""Publication review of published sessions (eventrevision), co-host acceptance
(eventcohost.state), hosts assigned to sessions (eventhost), Event.revised_at

Revision ID: 0009d
Revises: 0008b
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = '0009d'
down_revision: str | None = '0008b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVISION_STATES = ('pending', 'approved', 'rejected')
COHOST_STATES = ('invited', 'accepted', 'declined')


def upgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revised_at', server.db.UTCDateTime(), nullable=True))
    # Co-hosts entered before acceptance existed were agreed outside the system: accepted.
    with op.batch_alter_table('eventcohost', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.Enum(*COHOST_STATES, name='cohoststate',
                                                       native_enum=False, length=20),
                                      nullable=False, server_default='accepted'))
        batch_op.add_column(sa.Column('responded_at', server.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('responded_by', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_eventcohost_responded_by_staffuser', 'staffuser',
                                    ['responded_by'], ['id'])
    op.create_table(
        'eventrevision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.Enum(*REVISION_STATES, name='revisionstate', native_enum=False,
                                   length=20), nullable=False),
        sa.Column('fields', sa.Text(), nullable=False),
        sa.Column('submitted_at', server.db.UTCDateTime(), nullable=False),
        sa.Column('submitted_by', sa.Integer(), nullable=True),
        sa.Column('decided_at', server.db.UTCDateTime(), nullable=True),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['event.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['submitted_by'], ['staffuser.id']),
        sa.ForeignKeyConstraint(['decided_by'], ['staffuser.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('eventrevision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eventrevision_event_id'), ['event_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_eventrevision_state'), ['state'], unique=False)
    op.create_table(
        'eventhost',
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('assigned_by', sa.Integer(), nullable=True),
        sa.Column('assigned_at', server.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['event.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['staffuser.id']),
        sa.ForeignKeyConstraint(['assigned_by'], ['staffuser.id']),
        sa.PrimaryKeyConstraint('event_id', 'user_id'),
    )


def downgrade() -> None:
    op.drop_table('eventhost')
    with op.batch_alter_table('eventrevision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eventrevision_state'))
        batch_op.drop_index(batch_op.f('ix_eventrevision_event_id'))
    op.drop_table('eventrevision')
    with op.batch_alter_table('eventcohost', schema=None) as batch_op:
        batch_op.drop_constraint('fk_eventcohost_responded_by_staffuser', type_='foreignkey')
        batch_op.drop_column('responded_by')
        batch_op.drop_column('responded_at')
        batch_op.drop_column('state')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('revised_at')
