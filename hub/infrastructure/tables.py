"""The schema as typed SQLAlchemy models. Migrations must build exactly this (a test checks)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.domain.orders import (
    CURRENCY_CHARS,
    CUSTOMER_EMAIL_CHARS,
    CUSTOMER_NAME_CHARS,
    EXTERNAL_ID_CHARS,
    EXTERNAL_NUMBER_CHARS,
    EXTERNAL_REF_CHARS,
    EXTERNAL_STATUS_CHARS,
    LINE_TITLE_CHARS,
)
from hub.infrastructure.db import Base, JsonDocument, Money, UTCDateTime

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class SellerRow(Base):
    __tablename__ = "sellers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ShopRow(Base):
    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("marketplace", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), index=True)
    marketplace: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    stock_buffer: Mapped[int] = mapped_column(Integer)
    max_listed_quantity: Mapped[int] = mapped_column(Integer)
    api_base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    location_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    credentials: Mapped[str | None] = mapped_column(Text, nullable=True)  # MultiFernet token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductRow(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VariantRow(Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("seller_id", "sku"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"))
    sku: Mapped[str] = mapped_column(String(255))
    price: Mapped[Decimal] = mapped_column(Money)
    options: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    print_file_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # none: no derived price


class BlankRow(Base):
    __tablename__ = "blanks"
    # on_hand may dip below 0 when a shipment outruns a stale count; reserved never may.
    __table_args__ = (CheckConstraint("reserved >= 0", name="reserved_not_negative"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VariantBlankRow(Base):
    __tablename__ = "variant_blanks"
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    blank_id: Mapped[int] = mapped_column(ForeignKey("blanks.id"), primary_key=True, index=True)
    quantity_per_unit: Mapped[int] = mapped_column(Integer)


class BindingRow(Base):
    __tablename__ = "bindings"
    __table_args__ = (
        UniqueConstraint("shop_id", "variant_id"),
        Index("ix_bindings_shop_external_variant", "shop_id", "external_variant_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    external_listing_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    external_variant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    external_inventory_item_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_pushed_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_pushed_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    last_pushed_image_keys: Mapped[list[str] | None] = mapped_column(JsonDocument, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The price we decided for this listing (what a price push sends), and why a person must
    # look at it when a cost or rate change would have sold below the margin floor.
    listed_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    price_review: Mapped[str | None] = mapped_column(Text, nullable=True)


class BindingPushStateRow(Base):
    """One row per (binding, push kind): a push is due while desired > pushed."""

    __tablename__ = "binding_push_states"
    binding_id: Mapped[int] = mapped_column(
        ForeignKey("bindings.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    desired_version: Mapped[int] = mapped_column(BigInteger)
    pushed_version: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_orders_seller_id_id", "seller_id", "id"),
        Index("ix_orders_updated_at", "updated_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"))
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_CHARS))
    external_number: Mapped[str] = mapped_column(String(EXTERNAL_NUMBER_CHARS))
    external_status: Mapped[str] = mapped_column(String(EXTERNAL_STATUS_CHARS))
    status: Mapped[str] = mapped_column(String(32))
    needs_review: Mapped[bool] = mapped_column(Boolean)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    paid: Mapped[bool] = mapped_column(Boolean)
    cancelled: Mapped[bool] = mapped_column(Boolean)
    refunded: Mapped[bool] = mapped_column(Boolean)
    externally_fulfilled: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(String(CURRENCY_CHARS))
    total: Mapped[Decimal] = mapped_column(Money)
    presentment_currency: Mapped[str | None] = mapped_column(String(CURRENCY_CHARS), nullable=True)
    total_presentment: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    customer_name: Mapped[str | None] = mapped_column(String(CUSTOMER_NAME_CHARS), nullable=True)
    customer_email: Mapped[str | None] = mapped_column(String(CUSTOMER_EMAIL_CHARS), nullable=True)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # When the buyer's personal data was removed (on request or by retention); never undone.
    buyer_redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    external_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)
    has_unmapped_lines: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_orders_shop_unmapped",
    OrderRow.shop_id,
    postgresql_where=text("has_unmapped_lines"),
    sqlite_where=text("has_unmapped_lines"),
)


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "external_line_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_line_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_CHARS))
    external_listing_id: Mapped[str | None] = mapped_column(
        String(EXTERNAL_REF_CHARS), nullable=True
    )
    external_variant_id: Mapped[str | None] = mapped_column(
        String(EXTERNAL_REF_CHARS), nullable=True
    )
    sku: Mapped[str | None] = mapped_column(String(EXTERNAL_REF_CHARS), nullable=True)
    title: Mapped[str] = mapped_column(String(LINE_TITLE_CHARS))
    quantity: Mapped[int] = mapped_column(Integer)
    fulfilled_quantity: Mapped[int] = mapped_column(Integer)
    reserved_quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    unit_price_presentment: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id"), nullable=True, index=True
    )
    binding_id: Mapped[int | None] = mapped_column(
        ForeignKey("bindings.id", ondelete="SET NULL"), nullable=True
    )
    unmapped_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class FulfillmentRow(Base):
    __tablename__ = "fulfillments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(255))
    tracking_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FulfillmentLineRow(Base):
    __tablename__ = "fulfillment_lines"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fulfillment_id: Mapped[int] = mapped_column(
        ForeignKey("fulfillments.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("order_lines.id", ondelete="SET NULL"), nullable=True
    )
    quantity: Mapped[int] = mapped_column(Integer)


def table_of(model: type[Base]) -> Table:
    """The model's Core table, typed as one (``__table__`` is typed as any FromClause)."""
    found = model.__table__
    assert isinstance(found, Table)
    return found


class SyncOperationRow(Base):
    """One outbound or pull operation with its budget, lease, last error and result.

    Here, not in the sync engine, because core transactions (a fulfillment) create them."""

    __tablename__ = "sync_operations"
    __table_args__ = (
        UniqueConstraint("key"),
        Index("ix_sync_operations_status_not_before", "status", "not_before"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), nullable=True, index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # queued/running/succeeded/superseded/failed
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    attempts: Mapped[int] = mapped_column(Integer)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Names the claim holding the lease, so a retry of the same message resumes its own lease.
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductImageRow(Base):
    """An uploaded image of a product: its source bytes are stored once per content hash."""

    __tablename__ = "product_images"
    __table_args__ = (
        UniqueConstraint("product_id", "source_sha256"),
        Index("ix_product_images_product_role_rank", "product_id", "role", "rank"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), nullable=True
    )
    role: Mapped[str] = mapped_column(String(16))  # mockup (pushed) / print (never pushed)
    rank: Mapped[int] = mapped_column(Integer)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # uploaded / rendered / rejected
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImageRenditionRow(Base):
    """One marketplace's rendition of a source, made once per (content, spec)."""

    __tablename__ = "image_renditions"
    source_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    rendition: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushTriggerRow(Base):
    """A push due for (kind, shop): one row while queued, deleted when the push takes it, so a
    burst of changes makes one push of the latest values."""

    __tablename__ = "push_triggers"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A broker message written in the transaction that made it necessary; published after."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    delay_ms: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ShopAuthorizationRow(Base):
    """An authorization a seller started: kept until its single-use state comes back.

    Only the state's sha256 is stored, so the table never holds a usable state; the PKCE
    verifier is encrypted like credentials.
    """

    __tablename__ = "shop_authorizations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(32))
    shop_hint: Mapped[str | None] = mapped_column(String(500), nullable=True)
    api_base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)  # MultiFernet token
    options: Mapped[Any] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", ondelete="SET NULL"), nullable=True
    )


class ShopConnectionRow(Base):
    """How a shop's connection stands: when it was authorized, what it may do, and what the
    last webhook subscription check found. Apart from ``shops`` so a check never rewrites the
    shop's (encrypted, rotating) credentials."""

    __tablename__ = "shop_connections"
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scopes: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_status: Mapped[str] = mapped_column(String(32))
    webhook_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhooks_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PriceRuleRow(Base):
    """One shop's price rule: markup on our retail price, the marketplace's fees, rounding and a
    configured (never live) conversion rate into the shop's currency. Amounts, percentages and
    the rate are exact decimals of at most six places (``Money``)."""

    __tablename__ = "price_rules"
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    base_currency: Mapped[str] = mapped_column(String(3))
    conversion_rate: Mapped[Decimal] = mapped_column(Money)
    markup_percent: Mapped[Decimal] = mapped_column(Money)
    markup_fixed: Mapped[Decimal] = mapped_column(Money)
    fee_percent: Mapped[Decimal] = mapped_column(Money)
    fee_fixed: Mapped[Decimal] = mapped_column(Money)
    rounding: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
