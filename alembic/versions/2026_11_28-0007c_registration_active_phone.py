"""One active registration per phone and session, refused by the database itself

Revision ID: 0007c
Revises: 0006
Create Date: 2026-11-28 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007c'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_PHONE = "status IN ('confirmed', 'waitlisted') AND phone_hash <> ''"


def upgrade() -> None:
    # Walk-ins could repeat a registered phone before: the later rows keep their ticket and
    # their number, and only stop counting as that phone's registration (phone_hash '').
    op.execute(
        "UPDATE registration SET phone_hash = '' "
        "WHERE status IN ('confirmed', 'waitlisted') AND phone_hash <> '' AND EXISTS ("
        "SELECT 1 FROM registration AS earlier WHERE earlier.event_id = registration.event_id "
        "AND earlier.phone_hash = registration.phone_hash "
        "AND earlier.status IN ('confirmed', 'waitlisted') AND earlier.id < registration.id)")
    op.create_index('uq_registration_active_phone', 'registration', ['event_id', 'phone_hash'],
                    unique=True, sqlite_where=sa.text(ACTIVE_PHONE),
                    postgresql_where=sa.text(ACTIVE_PHONE))


def downgrade() -> None:
    op.drop_index('uq_registration_active_phone', table_name='registration')
