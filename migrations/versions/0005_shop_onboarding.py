"""onboarding: authorizations in flight and how each shop's connection stands

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "shop_authorizations",
        sa.Column("id", ID, nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("seller_id", ID, nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("shop_hint", sa.String(length=500), nullable=True),
        sa.Column("api_base_url", sa.String(length=500), nullable=True),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("options", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shop_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_shop_authorizations_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_shop_authorizations_shop_id_shops"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_authorizations")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_shop_authorizations_state_hash")),
    )
    with op.batch_alter_table("shop_authorizations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shop_authorizations_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "shop_connections",
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("webhook_status", sa.String(length=32), nullable=False),
        sa.Column("webhook_detail", sa.Text(), nullable=True),
        sa.Column("webhooks_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_shop_connections_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_shop_connections")),
    )


def downgrade() -> None:
    op.drop_table("shop_connections")
    with op.batch_alter_table("shop_authorizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_authorizations_expires_at"))
    op.drop_table("shop_authorizations")
