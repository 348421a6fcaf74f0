"""Each connector names a bound variant's stock item from the ids its binding holds, the way
its marketplace addresses quantities: Shopify's inventory item GID
(https://shopify.dev/docs/api/admin-graphql/latest/objects/InventoryItem), WooCommerce's
product or product/variation (https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-product-variations),
Etsy's listing and SKU (https://developers.etsy.com/documentation/reference#operation/updateListingInventory)."""

from __future__ import annotations

from connectors import registry
from hub.settings import Settings


def connector(name: str):  # type: ignore[no-untyped-def]
    return registry.create(name, registry.config_from_settings(name, Settings()))


def test_shopify_uses_the_inventory_item() -> None:
    shopify = connector("shopify")
    gid = "gid://shopify/InventoryItem/42"
    assert (
        shopify.stock_item_id(listing_id="p", variant_id="v", inventory_item_id=gid, sku="S") == gid
    )
    assert (
        shopify.stock_item_id(listing_id="p", variant_id="v", inventory_item_id=None, sku="S")
        is None
    )


def test_woocommerce_uses_the_product_or_its_variation() -> None:
    woo = connector("woocommerce")
    assert (
        woo.stock_item_id(listing_id="12", variant_id=None, inventory_item_id=None, sku="S") == "12"
    )
    assert (
        woo.stock_item_id(listing_id="12", variant_id="34", inventory_item_id=None, sku="S")
        == "12:34"
    )
    assert (
        woo.stock_item_id(listing_id=None, variant_id="34", inventory_item_id=None, sku="S") is None
    )


def test_etsy_uses_the_listing_and_our_sku_never_its_product_id() -> None:
    etsy = connector("etsy")
    assert (
        etsy.stock_item_id(listing_id="9", variant_id="777", inventory_item_id=None, sku="TEE-M")
        == "9:TEE-M"
    )
    assert (
        etsy.stock_item_id(listing_id="9", variant_id=None, inventory_item_id=None, sku=None) == "9"
    )
    assert (
        etsy.stock_item_id(listing_id=None, variant_id=None, inventory_item_id=None, sku="X")
        is None
    )
