"""Unit.contact_email: where a unit's quota reminders are sent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server_default: the units already there get the empty string (no address yet).
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_email', sa.String(length=200), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outboxmessage_unit_id'), ['unit_id'], unique=False)
        batch_op.create_foreign_key('fk_outboxmessage_unit_id_unit', 'unit', ['unit_id'], ['id'],
                                    ondelete='SET NULL')
    # Quota reminders queued before units had addresses went to "email" at unit:<code>, which a
    # mail server refuses: they become console messages of their unit, due again.
    op.execute("UPDATE outboxmessage SET unit_id = (SELECT unit.id FROM unit "
               "WHERE 'unit:' || unit.code = outboxmessage.recipient) "
               "WHERE topic = 'quota_reminder' AND recipient LIKE 'unit:%'")
    op.execute("UPDATE outboxmessage SET channel = 'console', state = 'pending', attempts = 0, "
               "error = '' WHERE topic = 'quota_reminder' AND recipient LIKE 'unit:%' "
               "AND channel = 'email' AND state IN ('pending', 'failed')")


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outboxmessage_unit_id_unit', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outboxmessage_unit_id'))
        batch_op.drop_column('unit_id')
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_column('contact_email')
