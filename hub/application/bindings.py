"""Bindings tie our variants to a shop's listings; creating one re-matches waiting order lines."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hub.application.orders import apply_reservation_changes, save_order
from hub.application.pricing import initial_prices
from hub.application.shops import load_shop
from hub.domain.catalog import Binding, PushState
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.orders import LineMatch
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import PUSH_KINDS, PushKind, Shop
from hub.domain.stock import available_quantity


@dataclass(frozen=True)
class BindingSpec:
    variant_id: int
    external_listing_id: str | None = None
    external_variant_id: str | None = None
    external_inventory_item_id: str | None = None


@dataclass(frozen=True)
class BindingView:
    binding: Binding
    sku: str
    available_quantity: int


def list_bindings(uow: UnitOfWork, shop_id: int, principal: Principal) -> list[BindingView]:
    shop = load_shop(uow, shop_id, principal)
    levels = uow.bindings.stock_levels(shop_id)
    bindings = uow.bindings.for_shop(shop_id)
    skus = uow.catalog.skus([binding.variant_id for binding in bindings])
    views = []
    for binding in bindings:
        assert binding.id is not None
        views.append(
            BindingView(
                binding=binding,
                sku=skus.get(binding.variant_id, ""),
                available_quantity=available_quantity(
                    levels.get(binding.id, []),
                    buffer=shop.stock_buffer,
                    maximum=shop.max_listed_quantity,
                ),
            )
        )
    return views


def put_bindings(
    uow: UnitOfWork, shop_id: int, specs: list[BindingSpec], principal: Principal
) -> list[Binding]:
    """Create or change bindings, then give the shop's waiting order lines a new chance.

    A new binding in a shop with a price rule gets its listed price (or a review note) at once.
    """
    shop = load_shop(uow, shop_id, principal)
    uow.lock(f"shop-bindings:{shop_id}")
    seen: set[int] = set()
    for spec in specs:
        if spec.variant_id in seen:
            raise InvalidInput(f"shop {shop_id}: variant {spec.variant_id} is bound twice")
        seen.add(spec.variant_id)
    prices = initial_prices(uow, shop_id, seen)
    result = [_put_one(uow, shop, spec, prices) for spec in specs]
    rematch_unmapped_lines(uow, shop_id)
    return result


def _put_one(
    uow: UnitOfWork,
    shop: Shop,
    spec: BindingSpec,
    prices: dict[int, tuple[Decimal | None, str | None]],
) -> Binding:
    assert shop.id is not None
    owner = uow.catalog.variant_seller(spec.variant_id)
    if owner is None or owner[0] != shop.seller_id:
        raise NotFound(f"variant {spec.variant_id} does not exist for seller {shop.seller_id}")
    binding = uow.bindings.find(shop.id, spec.variant_id)
    if binding is None:
        listed_price, price_review = prices.get(spec.variant_id, (None, None))
        binding = Binding(
            id=None,
            shop_id=shop.id,
            variant_id=spec.variant_id,
            # A price alone is due only once there is a price to push (a rule and a cost).
            push_states={
                kind: PushState(kind, desired_version=0)
                if kind is PushKind.PRICE and listed_price is None
                else PushState(kind)
                for kind in PUSH_KINDS[shop.marketplace]
            },
        )
        binding.listed_price, binding.price_review = listed_price, price_review
        _copy_ids(binding, spec)
        return uow.bindings.add(binding)
    if _ids(binding) != _ids_of(spec):
        _copy_ids(binding, spec)
        for state in binding.push_states.values():
            state.desired_version += 1  # a new listing must be told everything again
        uow.bindings.save(binding)
    return binding


def delete_binding(uow: UnitOfWork, shop_id: int, variant_id: int, principal: Principal) -> None:
    load_shop(uow, shop_id, principal)
    binding = uow.bindings.find(shop_id, variant_id)
    if binding is None or binding.id is None:
        raise NotFound(f"shop {shop_id} has no binding for variant {variant_id}")
    uow.bindings.delete(binding.id)


def rematch_unmapped_lines(uow: UnitOfWork, shop_id: int) -> int:
    """Match the shop's stored unmapped lines against its bindings; reserve what now matches."""
    matched = 0
    for order in uow.orders.with_unmapped_lines(shop_id):
        waiting = [line for line in order.lines if line.variant_id is None]
        by_external, by_sku = uow.bindings.match_lines(
            shop_id,
            [line.external_variant_id for line in waiting if line.external_variant_id],
            [line.sku for line in waiting if line.sku],
        )
        before = order.reserved_by_variant()
        hits = 0
        for line in waiting:
            match: LineMatch | None = None
            if line.external_variant_id:
                match = by_external.get(line.external_variant_id)
            if match is None and line.sku:
                match = by_sku.get(line.sku)
            if match is not None:
                line.variant_id, line.binding_id = match.variant_id, match.binding_id
                line.unmapped_reason = None
                hits += 1
        if hits:
            order.reconcile_reservations()
            apply_reservation_changes(uow, before, order.reserved_by_variant())
            save_order(uow, order)
            matched += hits
    return matched


def _ids(binding: Binding) -> tuple[str | None, str | None, str | None]:
    return (
        binding.external_listing_id,
        binding.external_variant_id,
        binding.external_inventory_item_id,
    )


def _ids_of(spec: BindingSpec) -> tuple[str | None, str | None, str | None]:
    return (spec.external_listing_id, spec.external_variant_id, spec.external_inventory_item_id)


def _copy_ids(binding: Binding, spec: BindingSpec) -> None:
    (
        binding.external_listing_id,
        binding.external_variant_id,
        binding.external_inventory_item_id,
    ) = _ids_of(spec)
