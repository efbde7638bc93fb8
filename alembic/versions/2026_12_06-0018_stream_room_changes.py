"""the live room's stream of changes (positions for shows, take-downs and pins)

Revision ID: 0018_stream
Revises: 0018audience
Create Date: 2026-12-06 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import server.db  # noqa: F401


revision: str = '0018_stream'
down_revision: str | None = '0018audience'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'livechange',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('pos', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['event.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_id'], ['livemessage.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id', 'pos'),
    )
    with op.batch_alter_table('liveroom', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_pos', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('livemessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pos', sa.Integer(), nullable=True))
    # What was approved so far is the stream's start: each message at the position of its seq.
    op.execute("INSERT INTO livechange (event_id, pos, kind, message_id, pinned) "
               "SELECT event_id, seq, 'comment', id, false FROM livemessage "
               "WHERE seq IS NOT NULL")
    op.execute("UPDATE livemessage SET pos = seq WHERE seq IS NOT NULL")
    op.execute("UPDATE liveroom SET last_pos = last_seq")


def downgrade() -> None:
    with op.batch_alter_table('livemessage', schema=None) as batch_op:
        batch_op.drop_column('pos')
    with op.batch_alter_table('liveroom', schema=None) as batch_op:
        batch_op.drop_column('last_pos')
    op.drop_table('livechange')
