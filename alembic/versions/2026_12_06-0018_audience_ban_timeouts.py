"""ban timeouts: a viewer's ban may end (5 or 10 minutes)

Revision ID: 0018audience
Revises: 0018media
Create Date: 2026-12-06 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import server.db


revision: str = '0018audience'
down_revision: str | None = '0018media'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('viewer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('banned_until', server.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('viewer', schema=None) as batch_op:
        batch_op.drop_column('banned_until')
