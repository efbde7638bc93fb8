"""transcode jobs: the lease token of the attempt that holds a running job

Revision ID: 0018jobs
Revises: 0017m
Create Date: 2026-12-06 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018jobs'
down_revision: str | None = '0017m'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('transcodejob', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease', sa.String(length=32), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('transcodejob', schema=None) as batch_op:
        batch_op.drop_column('lease')
