"""pricing: variant costs, a price rule per shop, and each binding's listed price and review note

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(20, 6).with_variant(sa.String(40), "sqlite")  # SQLite NUMERIC is a float


def upgrade() -> None:
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost", MONEY, nullable=True))
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listed_price", MONEY, nullable=True))
        batch_op.add_column(sa.Column("price_review", sa.Text(), nullable=True))
    op.create_table(
        "price_rules",
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("conversion_rate", MONEY, nullable=False),
        sa.Column("markup_percent", MONEY, nullable=False),
        sa.Column("markup_fixed", MONEY, nullable=False),
        sa.Column("fee_percent", MONEY, nullable=False),
        sa.Column("fee_fixed", MONEY, nullable=False),
        sa.Column("rounding", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_price_rules_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_price_rules")),
    )


def downgrade() -> None:
    op.drop_table("price_rules")
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.drop_column("price_review")
        batch_op.drop_column("listed_price")
    with op.batch_alter_table("variants", schema=None) as batch_op:
        batch_op.drop_column("cost")
