"""Orders: what marketplaces sold, and our production of it.

Import is the one way orders enter: idempotent, never refused, newest marketplace data wins.
Reservations are kept per line so every import can reconcile them exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hub.domain.errors import Conflict, InvalidInput, InvalidTransition
from hub.domain.stock import line_reservation


class ProductionStatus(StrEnum):
    RECEIVED = "received"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


ALLOWED_TRANSITIONS: dict[ProductionStatus, frozenset[ProductionStatus]] = {
    ProductionStatus.RECEIVED: frozenset(
        {ProductionStatus.IN_PRODUCTION, ProductionStatus.CANCELLED}
    ),
    ProductionStatus.IN_PRODUCTION: frozenset(
        {ProductionStatus.SHIPPED, ProductionStatus.CANCELLED}
    ),
    ProductionStatus.SHIPPED: frozenset({ProductionStatus.DELIVERED}),
    ProductionStatus.DELIVERED: frozenset(),
    ProductionStatus.CANCELLED: frozenset(),
}
# Statuses after which a marketplace cancellation or refund needs a person to look at it.
REVIEW_AFTER: frozenset[ProductionStatus] = frozenset(
    {ProductionStatus.IN_PRODUCTION, ProductionStatus.SHIPPED, ProductionStatus.DELIVERED}
)


# What stands in for the buyer's name once their data is redacted.
REDACTED = "[redacted]"
# Address keys kept by a redaction: the destination country is needed for tax and accounting
# and identifies nobody.
KEPT_ADDRESS_KEYS = ("country",)


def redacted_address(address: dict[str, Any]) -> dict[str, Any]:
    return {key: address[key] for key in KEPT_ADDRESS_KEYS if address.get(key)}


@dataclass(frozen=True)
class ImportLine:
    external_line_id: str
    quantity: int
    unit_price: Decimal
    sku: str | None = None
    external_listing_id: str | None = None
    external_variant_id: str | None = None
    title: str = ""
    unit_price_presentment: Decimal | None = None


@dataclass(frozen=True)
class ImportOrder:
    """One marketplace order as every connector's mapper produces it.

    ``external_status`` is stored verbatim; the flags are the mapper's normalization of it. Line
    quantities are current: after refunds and removals.
    """

    shop_id: int
    external_id: str
    external_number: str
    external_status: str
    external_updated_at: datetime
    placed_at: datetime
    currency: str
    total: Decimal
    lines: tuple[ImportLine, ...]
    paid: bool = False
    cancelled: bool = False
    refunded: bool = False
    fulfilled: bool = False
    presentment_currency: str | None = None
    total_presentment: Decimal | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    shipping_address: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for line in self.lines:
            if line.quantity < 0:
                raise InvalidInput(
                    f"order {self.external_id}: line {line.external_line_id} "
                    "has a negative quantity"
                )
            if line.external_line_id in seen:
                raise InvalidInput(
                    f"order {self.external_id}: line {line.external_line_id} appears twice"
                )
            seen.add(line.external_line_id)


@dataclass(frozen=True)
class LineMatch:
    variant_id: int
    binding_id: int


@dataclass
class OrderLine:
    id: int | None
    external_line_id: str
    quantity: int
    unit_price: Decimal
    sku: str | None = None
    external_listing_id: str | None = None
    external_variant_id: str | None = None
    title: str = ""
    unit_price_presentment: Decimal | None = None
    fulfilled_quantity: int = 0
    reserved_quantity: int = 0
    variant_id: int | None = None
    binding_id: int | None = None
    unmapped_reason: str | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.fulfilled_quantity)


@dataclass(frozen=True)
class FulfillmentLine:
    order_line_id: int
    quantity: int


@dataclass
class Fulfillment:
    id: int | None
    order_id: int
    carrier: str
    tracking_number: str
    tracking_url: str | None
    lines: list[FulfillmentLine]
    created_at: datetime | None = None


@dataclass
class Order:
    id: int | None
    seller_id: int
    shop_id: int
    external_id: str
    external_number: str
    external_status: str
    external_updated_at: datetime
    placed_at: datetime
    currency: str
    total: Decimal
    status: ProductionStatus = ProductionStatus.RECEIVED
    needs_review: bool = False
    review_reason: str | None = None
    paid: bool = False
    cancelled: bool = False
    refunded: bool = False
    externally_fulfilled: bool = False
    presentment_currency: str | None = None
    total_presentment: Decimal | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    shipping_address: dict[str, Any] = field(default_factory=dict)
    buyer_redacted_at: datetime | None = None  # set once: imports never bring buyer data back
    lines: list[OrderLine] = field(default_factory=list)
    version: int = 0

    # --- buyer data --------------------------------------------------------------------------
    def redact_buyer(self, at: datetime) -> bool:
        """Drop the buyer's personal data (name, email, address and phone), keep
        what production and accounting need (lines, totals, fulfillments, the destination
        country); ``False`` when it was redacted already."""
        if self.buyer_redacted_at is not None:
            return False
        self.customer_name = REDACTED
        self.customer_email = None
        self.shipping_address = redacted_address(self.shipping_address)
        self.buyer_redacted_at = at
        return True

    # --- production status -------------------------------------------------------------------
    def change_status(self, new: ProductionStatus, *, by_fulfillment: bool = False) -> None:
        if new is ProductionStatus.SHIPPED and not by_fulfillment:
            raise InvalidTransition(
                f"order {self.id}: shipped is set by creating fulfillments for every line, "
                "not by changing the status"
            )
        if new is self.status:
            return
        allowed = ALLOWED_TRANSITIONS[self.status]
        if by_fulfillment and new is ProductionStatus.SHIPPED:
            allowed = allowed | {ProductionStatus.SHIPPED}
        if new not in allowed:
            raise InvalidTransition(
                f"order {self.id}: cannot go from {self.status.value} to {new.value}"
            )
        self.status = new

    # --- reservations ------------------------------------------------------------------------
    def reconcile_reservations(self) -> dict[int, int]:
        """Set each mapped line's reservation to what the rules say; return per-variant changes."""
        live = self.paid and not self.cancelled and self.status is not ProductionStatus.CANCELLED
        changes: dict[int, int] = defaultdict(int)
        for line in self.lines:
            target = 0
            if line.variant_id is not None:
                target = line_reservation(
                    quantity=line.quantity,
                    fulfilled=line.fulfilled_quantity,
                    paid=live,
                    cancelled=False,
                )
                changes[line.variant_id] += target - line.reserved_quantity
            line.reserved_quantity = target
        return {variant: delta for variant, delta in changes.items() if delta}

    def reserved_by_variant(self) -> dict[int, int]:
        totals: dict[int, int] = defaultdict(int)
        for line in self.lines:
            if line.variant_id is not None and line.reserved_quantity:
                totals[line.variant_id] += line.reserved_quantity
        return dict(totals)

    # --- fulfillment -------------------------------------------------------------------------
    def fulfill(self, lines: list[FulfillmentLine]) -> dict[int, int]:
        """Ship lines; return the units shipped per variant (they leave on hand)."""
        if self.status in (ProductionStatus.CANCELLED, ProductionStatus.DELIVERED):
            raise InvalidTransition(f"order {self.id}: cannot fulfill a {self.status.value} order")
        if not lines:
            raise InvalidInput(f"order {self.id}: a fulfillment needs at least one line")
        by_id = {line.id: line for line in self.lines}
        shipped: dict[int, int] = defaultdict(int)
        requested: dict[int, int] = defaultdict(int)
        for item in lines:
            requested[item.order_line_id] += item.quantity
        for line_id, quantity in requested.items():
            line = by_id.get(line_id)
            if line is None:
                raise InvalidInput(f"order {self.id}: line {line_id} is not on this order")
            if quantity <= 0:
                raise InvalidInput(f"order {self.id}: line {line_id}: quantity must be positive")
            if quantity > line.remaining:
                raise Conflict(
                    f"order {self.id}: line {line_id}: {quantity} requested but only "
                    f"{line.remaining} left to ship"
                )
        for line_id, quantity in requested.items():
            line = by_id[line_id]
            line.fulfilled_quantity += quantity
            if line.variant_id is not None:
                shipped[line.variant_id] += quantity
        if all(line.remaining == 0 for line in self.lines):
            self.change_status(ProductionStatus.SHIPPED, by_fulfillment=True)
        self.reconcile_reservations()
        return dict(shipped)


@dataclass(frozen=True)
class ImportOutcome:
    order: Order
    applied: bool
    created: bool
    reservation_changes: dict[int, int]


def is_stale(existing: Order, incoming: ImportOrder) -> bool:
    """An older marketplace update never overwrites a newer one; an equal one is re-applied."""
    return incoming.external_updated_at < existing.external_updated_at


def apply_import(
    existing: Order | None,
    command: ImportOrder,
    *,
    seller_id: int,
    matches: dict[str, LineMatch | str],
) -> ImportOutcome:
    """Merge a marketplace order into ours.

    ``matches`` maps each external line id to its binding match or to the reason it has none.
    Lines are replaced as a whole, keeping our ids and fulfilled quantities for lines the
    marketplace still lists.
    """
    if existing is not None and is_stale(existing, command):
        return ImportOutcome(existing, applied=False, created=False, reservation_changes={})
    order = existing or Order(
        id=None,
        seller_id=seller_id,
        shop_id=command.shop_id,
        external_id=command.external_id,
        external_number=command.external_number,
        external_status=command.external_status,
        external_updated_at=command.external_updated_at,
        placed_at=command.placed_at,
        currency=command.currency,
        total=command.total,
    )
    before = order.reserved_by_variant()
    previous = {line.external_line_id: line for line in order.lines}
    new_lines: list[OrderLine] = []
    for incoming in command.lines:
        kept = previous.get(incoming.external_line_id)
        match = matches.get(incoming.external_line_id, "no binding lookup was made")
        line = OrderLine(
            id=kept.id if kept else None,
            external_line_id=incoming.external_line_id,
            quantity=incoming.quantity,
            unit_price=incoming.unit_price,
            sku=incoming.sku,
            external_listing_id=incoming.external_listing_id,
            external_variant_id=incoming.external_variant_id,
            title=incoming.title,
            unit_price_presentment=incoming.unit_price_presentment,
            fulfilled_quantity=kept.fulfilled_quantity if kept else 0,
        )
        if isinstance(match, LineMatch):
            line.variant_id = match.variant_id
            line.binding_id = match.binding_id
        else:
            line.unmapped_reason = match
        new_lines.append(line)
    order.lines = new_lines
    order.external_number = command.external_number
    order.external_status = command.external_status
    order.external_updated_at = command.external_updated_at
    order.placed_at = command.placed_at
    order.currency = command.currency
    order.total = command.total
    order.presentment_currency = command.presentment_currency
    order.total_presentment = command.total_presentment
    if order.buyer_redacted_at is None:  # a redacted buyer stays redacted
        order.customer_name = command.customer_name
        order.customer_email = command.customer_email
        order.shipping_address = dict(command.shipping_address)
    order.paid = command.paid
    order.externally_fulfilled = command.fulfilled
    _apply_cancellation_and_refund(order, command)

    order.reconcile_reservations()
    return ImportOutcome(
        order,
        applied=True,
        created=existing is None,
        reservation_changes=reservation_difference(before, order.reserved_by_variant()),
    )


def reservation_difference(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    return {
        variant: after.get(variant, 0) - before.get(variant, 0)
        for variant in sorted(set(before) | set(after))
        if after.get(variant, 0) != before.get(variant, 0)
    }


def _apply_cancellation_and_refund(order: Order, command: ImportOrder) -> None:
    """Record the marketplace's cancellation or refund; flag it when production had started."""
    newly_cancelled = command.cancelled and not order.cancelled
    newly_refunded = command.refunded and not order.refunded
    order.cancelled = command.cancelled
    order.refunded = command.refunded
    if command.cancelled and order.status is ProductionStatus.RECEIVED:
        order.status = ProductionStatus.CANCELLED
        return
    if order.status in REVIEW_AFTER and (newly_cancelled or newly_refunded):
        what = "cancelled" if newly_cancelled else "refunded"
        order.needs_review = True
        order.review_reason = (
            f"the marketplace reports the order {what} after production started "
            f"(status {order.status.value})"
        )
