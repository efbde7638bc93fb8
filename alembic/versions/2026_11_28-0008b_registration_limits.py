"""Registration limits: attempts per address and phone; texts per number counted by recipient

Revision ID: 0008b
Revises: 0007c
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = '0008b'
down_revision: str | None = '0007c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'registrationattempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('at', server.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('registrationattempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registrationattempt_at'), ['at'], unique=False)
        batch_op.create_index('ix_registrationattempt_key_at', ['key', 'at'], unique=False)
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.create_index('ix_outboxmessage_recipient_created', ['recipient', 'created_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_index('ix_outboxmessage_recipient_created')
    with op.batch_alter_table('registrationattempt', schema=None) as batch_op:
        batch_op.drop_index('ix_registrationattempt_key_at')
        batch_op.drop_index(batch_op.f('ix_registrationattempt_at'))
    op.drop_table('registrationattempt')
