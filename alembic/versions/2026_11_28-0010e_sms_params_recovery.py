"""Texts carry their template parameters; one-time codes to find registrations again

Revision ID: 0010e
Revises: 0009d
Create Date: 2026-11-28 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = '0010e'
down_revision: str | None = '0009d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_params', sa.Text(), nullable=False,
                                      server_default='{}'))
    op.create_table(
        'recoverychallenge',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone_key', sa.String(length=64), nullable=False),
        sa.Column('address_key', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', server.db.UTCDateTime(), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('used_at', server.db.UTCDateTime(), nullable=True),
        sa.Column('created_at', server.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('recoverychallenge', schema=None) as batch_op:
        batch_op.create_index('ix_recoverychallenge_phone_created', ['phone_key', 'created_at'],
                              unique=False)
        batch_op.create_index('ix_recoverychallenge_address_created',
                              ['address_key', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recoverychallenge', schema=None) as batch_op:
        batch_op.drop_index('ix_recoverychallenge_address_created')
        batch_op.drop_index('ix_recoverychallenge_phone_created')
    op.drop_table('recoverychallenge')
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('sms_params')
