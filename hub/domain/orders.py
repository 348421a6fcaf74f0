"""Orders: what marketplaces sold, and our production of it.

Import is the one way orders enter: idempotent, never refused, newest marketplace data wins.
Reservations are kept per line so every import can reconcile them exactly.
"""

from __future__ import annotations

import re
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


# What the ``orders`` and ``order_lines`` columns hold (hub/infrastructure/tables.py is built
# from these, so the two cannot drift). A marketplace answer may carry longer text; an import
# must either fit it or refuse it here, never fail its INSERT on every retry.
EXTERNAL_ID_CHARS = 255  # orders.external_id, order_lines.external_line_id: refused if longer
EXTERNAL_REF_CHARS = 255  # listing/variant ids and SKUs: dropped if longer (see ImportLine)
EXTERNAL_NUMBER_CHARS = 255  # display text: clipped
EXTERNAL_STATUS_CHARS = 255  # display text: clipped
CURRENCY_CHARS = 3  # ISO 4217 codes: refused if longer
CUSTOMER_NAME_CHARS = 255  # display text: clipped
CUSTOMER_EMAIL_CHARS = 255  # dropped if longer (no valid address is: RFC 5321 allows 254)
LINE_TITLE_CHARS = 500  # display text: clipped
# order_lines.quantity is a 32-bit Integer column.
MAX_LINE_QUANTITY = 2**31 - 1
CLIPPED_MARK = "\u2026"  # an ellipsis: a clipped text says so
MESSAGE_ID_CHARS = 40  # how much of an over-long id an error message quotes
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def redacted_address(address: dict[str, Any]) -> dict[str, Any]:
    return {key: address[key] for key in KEPT_ADDRESS_KEYS if address.get(key)}


def storable(text: str) -> str:
    """Text without what no database column can hold: NUL (PostgreSQL refuses it in text and
    JSON) and lone surrogates (no encoder writes them; JSON's ``\\ud800`` escapes make them).
    Only display text goes through here; identifiers with them are refused instead."""
    if _is_storable(text):
        return text
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def _is_storable(text: str) -> bool:
    return text.isprintable() or not _UNSTORABLE.search(text)


def _storable_values(value: Any) -> Any:
    """``storable`` over every string of a JSON document (an address), keys included."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): _storable_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable_values(item) for item in value]
    return value


def clipped(text: str, limit: int) -> str:
    """Display text cut to ``limit`` characters, ending in an ellipsis when cut: a shown name
    or number that is a little short still identifies the order; a failed import shows none."""
    text = storable(text)
    return text if len(text) <= limit else text[: limit - 1] + CLIPPED_MARK


def _fitting(text: str | None, limit: int) -> str | None:
    """``text``, or None when it cannot be stored as it is (too long, or holding NUL or a lone
    surrogate): for values whose only use is to be compared (a SKU, a marketplace reference)
    a changed copy could equal something else."""
    if text is None or (len(text) <= limit and _is_storable(text)):
        return text
    return None


def _quoted(text: str) -> str:
    return repr(clipped(text, MESSAGE_ID_CHARS))


@dataclass(frozen=True)
class ImportLine:
    """One order line as a mapper produces it, made to fit ``order_lines``.

    The SKU and the listing and variant ids only serve to match our catalog and bindings,
    whose columns are no wider: a longer one cannot match anything, so it is dropped and the
    line is imported unmatched (shown to a person) instead of refusing the whole order. The
    title is clipped. The line id identifies the line, so ``ImportOrder`` refuses a long one.
    """

    external_line_id: str
    quantity: int
    unit_price: Decimal
    sku: str | None = None
    external_listing_id: str | None = None
    external_variant_id: str | None = None
    title: str = ""
    unit_price_presentment: Decimal | None = None

    def __post_init__(self) -> None:
        _set(self, "sku", _fitting(self.sku, EXTERNAL_REF_CHARS))
        _set(self, "external_listing_id", _fitting(self.external_listing_id, EXTERNAL_REF_CHARS))
        _set(self, "external_variant_id", _fitting(self.external_variant_id, EXTERNAL_REF_CHARS))
        _set(self, "title", clipped(self.title, LINE_TITLE_CHARS))


def _set(instance: object, name: str, value: Any) -> None:
    """Assign on a frozen dataclass, from its own ``__post_init__`` only."""
    object.__setattr__(instance, name, value)


@dataclass(frozen=True)
class ImportOrder:
    """One marketplace order as every connector's mapper produces it.

    ``external_status`` is stored verbatim (clipped to its column, like the other display
    text); the flags are the mapper's normalization of it. Line quantities are current: after
    refunds and removals. What cannot be stored is refused with ``InvalidInput`` (connectors
    report it as a bad answer), never left to fail the INSERT on every retry.
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
        self._check_codes()
        _set(self, "external_number", clipped(self.external_number, EXTERNAL_NUMBER_CHARS))
        _set(self, "external_status", clipped(self.external_status, EXTERNAL_STATUS_CHARS))
        if self.customer_name is not None:
            _set(self, "customer_name", clipped(self.customer_name, CUSTOMER_NAME_CHARS))
        _set(self, "customer_email", _fitting(self.customer_email, CUSTOMER_EMAIL_CHARS))
        _set(self, "shipping_address", _storable_values(self.shipping_address))
        seen: set[str] = set()
        for line in self.lines:
            self._check_line(line)
            if line.external_line_id in seen:
                raise InvalidInput(
                    f"order {self.external_id}: line {line.external_line_id} appears twice"
                )
            seen.add(line.external_line_id)

    def _check_codes(self) -> None:
        """Identifiers and codes are refused, never cut: two orders whose ids share their
        first 255 characters would be merged into one, and a cut code names another thing."""
        if len(self.external_id) > EXTERNAL_ID_CHARS:
            raise InvalidInput(
                f"order {_quoted(self.external_id)}: the id is {len(self.external_id)} "
                f"characters long; at most {EXTERNAL_ID_CHARS} can be stored"
            )
        if not _is_storable(self.external_id):
            raise InvalidInput(
                f"order {_quoted(storable(self.external_id))}: the id holds a NUL or a lone "
                "surrogate, which cannot be stored"
            )
        for name in ("currency", "presentment_currency"):
            code = getattr(self, name)
            if code is not None and (len(code) > CURRENCY_CHARS or not _is_storable(code)):
                raise InvalidInput(
                    f"order {self.external_id}: {name} {_quoted(code)} is not a currency code"
                )

    def _check_line(self, line: ImportLine) -> None:
        what = f"order {self.external_id}: line {_quoted(line.external_line_id)}"
        if len(line.external_line_id) > EXTERNAL_ID_CHARS:
            raise InvalidInput(
                f"{what}: the line id is {len(line.external_line_id)} characters long; at most "
                f"{EXTERNAL_ID_CHARS} can be stored"
            )
        if not _is_storable(line.external_line_id):
            raise InvalidInput(f"{what}: the line id holds a NUL or a lone surrogate")
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
            raise InvalidInput(f"{what}: the quantity {line.quantity!r} is not a whole number")
        if line.quantity < 0:
            raise InvalidInput(f"{what} has a negative quantity")
        if line.quantity > MAX_LINE_QUANTITY:
            raise InvalidInput(  # the number itself may be thousands of digits: not quoted
                f"{what}: the quantity is above {MAX_LINE_QUANTITY}, beyond any order"
            )


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
