"""Order use cases: import from marketplaces, production status, fulfillments."""

from __future__ import annotations

from dataclasses import dataclass

from hub.application.cache_keys import order_key
from hub.domain.errors import NotFound
from hub.domain.orders import (
    Fulfillment,
    FulfillmentLine,
    ImportOrder,
    ImportOutcome,
    LineMatch,
    Order,
    ProductionStatus,
    apply_import,
    reservation_difference,
)
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import QUANTITY_KINDS, Shop
from hub.domain.stock import blank_deltas


def import_order(
    uow: UnitOfWork, command: ImportOrder, *, shop: Shop | None = None
) -> ImportOutcome:
    """Upsert one marketplace order. Idempotent, and never refused for its content.

    ``shop`` spares the lookup when the caller holds it already (a worker, per event); only its
    seller is read, which never changes.
    """
    if shop is None or shop.id != command.shop_id:
        shop = uow.shops.get(command.shop_id)
    if shop is None:
        raise NotFound(f"shop {command.shop_id} does not exist; connect it before importing")
    uow.lock(f"order:{command.shop_id}:{command.external_id}")
    existing = uow.orders.get_by_external(command.shop_id, command.external_id)
    matches = _match_lines(uow, command)
    outcome = apply_import(existing, command, seller_id=shop.seller_id, matches=matches)
    if not outcome.applied:
        return outcome
    save_order(uow, outcome.order)
    # Shared blank counters last: their row locks are held only from here to the commit, so
    # concurrent imports of orders for the same blanks queue as briefly as possible.
    _reserve(uow, outcome.reservation_changes)
    return outcome


def _match_lines(uow: UnitOfWork, command: ImportOrder) -> dict[str, LineMatch | str]:
    by_external, by_sku = uow.bindings.match_lines(
        command.shop_id,
        [line.external_variant_id for line in command.lines if line.external_variant_id],
        [line.sku for line in command.lines if line.sku],
    )
    matches: dict[str, LineMatch | str] = {}
    for line in command.lines:
        match = by_external.get(line.external_variant_id or "") or by_sku.get(line.sku or "")
        if match is not None:
            matches[line.external_line_id] = match
        else:
            matches[line.external_line_id] = (
                f"no binding in shop {command.shop_id} for external variant "
                f"{line.external_variant_id or '-'} or SKU {line.sku or '-'}"
            )
    return matches


def save_order(uow: UnitOfWork, order: Order) -> Order:
    saved = uow.orders.save(order)
    assert saved.id is not None
    uow.changed(order_key(saved.id), saved.version)
    return saved


def _reserve(uow: UnitOfWork, changes: dict[int, int]) -> None:
    if not changes:
        return
    deltas = blank_deltas(changes, uow.catalog.blank_usage(changes))
    if deltas:
        uow.stock.adjust(reserved=deltas)
        uow.bindings.bump(QUANTITY_KINDS, blank_ids=deltas)


def apply_reservation_changes(
    uow: UnitOfWork, before: dict[int, int], after: dict[int, int]
) -> None:
    _reserve(uow, reservation_difference(before, after))


def load_order(uow: UnitOfWork, order_id: int, principal: Principal) -> Order:
    order = uow.orders.get(order_id)
    if order is None or not principal.can_see(order.seller_id):
        raise NotFound(f"order {order_id} does not exist")
    return order


def change_status(
    uow: UnitOfWork, order_id: int, status: ProductionStatus, principal: Principal
) -> Order:
    order = load_order(uow, order_id, principal)
    before = order.reserved_by_variant()
    order.change_status(status)
    order.reconcile_reservations()
    apply_reservation_changes(uow, before, order.reserved_by_variant())
    return save_order(uow, order)


def clear_review(uow: UnitOfWork, order_id: int, principal: Principal) -> Order:
    order = load_order(uow, order_id, principal)
    order.needs_review = False
    order.review_reason = None
    return save_order(uow, order)


@dataclass(frozen=True)
class CreateFulfillment:
    order_id: int
    carrier: str
    tracking_number: str
    tracking_url: str | None
    lines: tuple[FulfillmentLine, ...]


def create_fulfillment(
    uow: UnitOfWork, command: CreateFulfillment, principal: Principal
) -> tuple[Fulfillment, Order]:
    """Ship lines: their stock leaves on hand and their reservation is released together."""
    order = load_order(uow, command.order_id, principal)
    before = order.reserved_by_variant()
    shipped = order.fulfill(list(command.lines))
    reservation = reservation_difference(before, order.reserved_by_variant())
    usage = uow.catalog.blank_usage(set(shipped) | set(reservation))
    on_hand = blank_deltas({variant: -units for variant, units in shipped.items()}, usage)
    reserved = blank_deltas(reservation, usage)
    if on_hand or reserved:
        uow.stock.adjust(reserved=reserved, on_hand=on_hand)
        uow.bindings.bump(QUANTITY_KINDS, blank_ids=set(on_hand) | set(reserved))
    saved = save_order(uow, order)
    assert saved.id is not None
    fulfillment = uow.orders.add_fulfillment(
        Fulfillment(
            id=None,
            order_id=saved.id,
            carrier=command.carrier,
            tracking_number=command.tracking_number,
            tracking_url=command.tracking_url,
            lines=list(command.lines),
        )
    )
    assert fulfillment.id is not None
    uow.outbound.push_fulfillment(saved.shop_id, saved.id, fulfillment.id)
    return fulfillment, saved
