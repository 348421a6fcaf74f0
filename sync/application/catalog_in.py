"""Catalog in: list a shop's listings on its marketplace and bind them to our variants by SKU.

Every page is read with no transaction open; the binding happens afterwards in one short
transaction. Rate limits and transient failures come back as a ``Retry``; refused credentials
mark the shop ``auth_failed``; permanent errors propagate.
"""

from __future__ import annotations

from connectors.contract import AuthError, ListingVariant, RateLimited, TransientError
from hub.application.auto_binding import auto_bind
from hub.domain.auto_binding import BindingReport, RemoteVariant
from hub.domain.sellers import Principal
from hub.domain.shops import ShopStatus
from sync.application.orders_in import Retry, mark_shop
from sync.worker.runtime import SyncRuntime, shop_context

OPERATOR = Principal(seller_id=None, is_admin=True)


def pull_catalog(runtime: SyncRuntime, shop_id: int) -> BindingReport | Retry | None:
    """The binding report, a ``Retry`` to send later, or None (shop gone, inactive, or its
    credentials refused)."""
    shop = runtime.shop(shop_id)
    if shop is None or shop.status is not ShopStatus.ACTIVE:
        return None
    connector = runtime.connector(shop.marketplace.value)
    context = shop_context(shop)
    remote: list[RemoteVariant] = []
    cursor: str | None = None
    while True:
        try:
            page = connector.list_listings(context, cursor=cursor)
        except RateLimited as limited:
            return Retry(limited.retry_after or 1.0)
        except TransientError as error:
            return Retry(error.retry_after or 5.0)
        except AuthError:
            mark_shop(runtime, shop, ShopStatus.AUTH_FAILED)
            return None
        remote.extend(remote_variant(variant) for variant in page.variants)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    with runtime.container.uow() as uow:
        report = auto_bind(uow, shop_id, remote, OPERATOR)
        uow.commit()
    return report


def remote_variant(variant: ListingVariant) -> RemoteVariant:
    return RemoteVariant(
        listing_id=variant.listing_id,
        variant_id=variant.variant_id,
        inventory_item_id=variant.inventory_item_id,
        sku=variant.sku,
        title=variant.title,
    )
