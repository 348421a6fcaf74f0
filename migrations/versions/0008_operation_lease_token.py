"""operations: the token of the claim holding each lease

A message retried after its run failed (an outage mid-run) carries the token of the lease that
run took, and takes the operation again at once instead of waiting for the lease to run out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_operations", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
