"""outbound: push triggers, operation results

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 03:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copy of the model type: a migration never imports application code.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "push_triggers",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_push_triggers_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "shop_id", name=op.f("pk_push_triggers")),
    )
    with op.batch_alter_table("sync_operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_operations", schema=None) as batch_op:
        batch_op.drop_column("result")
    op.drop_table("push_triggers")
