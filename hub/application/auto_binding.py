"""Catalog binding: bind a shop's remote variants to the seller's variants by SKU.

Only unambiguous matches are written (through ``put_bindings``, so waiting order lines get their
new chance); unknown SKUs, missing SKUs and conflicts come back in the report. The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.application.bindings import BindingSpec, put_bindings
from hub.application.shops import load_shop
from hub.domain.auto_binding import BindingReport, RemoteVariant, match_by_sku
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal


def auto_bind(
    uow: UnitOfWork, shop_id: int, remote: Sequence[RemoteVariant], principal: Principal
) -> BindingReport:
    shop = load_shop(uow, shop_id, principal)
    # Taken before the bindings are read (put_bindings takes it again: it is re-entrant), so a
    # concurrent binding change cannot slip between the read and the write.
    uow.lock(f"shop-bindings:{shop_id}")
    ours = uow.catalog.variants_by_sku(shop.seller_id, {v.sku for v in remote if v.sku})
    existing = {
        binding.variant_id: (
            binding.external_listing_id,
            binding.external_variant_id,
            binding.external_inventory_item_id,
        )
        for binding in uow.bindings.for_shop(shop_id)
    }
    report = match_by_sku(remote, ours, existing)
    if report.bound:
        put_bindings(
            uow,
            shop_id,
            [
                BindingSpec(
                    variant_id=proposal.variant_id,
                    external_listing_id=proposal.remote.listing_id,
                    external_variant_id=proposal.remote.variant_id,
                    external_inventory_item_id=proposal.remote.inventory_item_id,
                )
                for proposal in report.bound
            ],
            principal,
        )
    return report
