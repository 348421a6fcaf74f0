"""The conformance suite against the Shopify sandbox, and proof that it catches broken
connectors. Payload shapes follow https://shopify.dev/docs/api/admin-graphql (the sandbox's
schema); recorded documentation payloads are exercised in test_shopify_recorded.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.shopify.connector import ShopifyConnector
from connectors.testing import (
    ConnectorConformance,
    check_money_exact,
    check_pagination_complete,
    check_stock_batches,
)
from tests.contract.broken_connectors import (
    DropsLastOrderOfEachPage,
    PacksEveryLevelIntoOneBatch,
    ParsesMoneyAsFloat,
    SortsLevelsByQuantity,
)
from tests.contract.shopify_double import (
    FAST_RESTORE,
    ShopifyDouble,
    make_connector,
    shopify_double,
)


@pytest.fixture
def double() -> Iterator[ShopifyDouble]:
    with shopify_double(restore_rate=FAST_RESTORE) as built:
        yield built


@pytest.fixture
def connector() -> Iterator[ShopifyConnector]:
    built = make_connector()
    yield built
    built.close()


class TestShopifyConformance(ConnectorConformance):
    pass


class TestTheSuiteCatchesBrokenConnectors:
    def test_a_connector_dropping_the_last_order_of_each_page_fails(
        self, double: ShopifyDouble
    ) -> None:
        broken = make_connector(DropsLastOrderOfEachPage)
        with pytest.raises(AssertionError, match="never returned"):
            check_pagination_complete(broken, double)
        broken.close()

    def test_a_connector_parsing_money_as_float_fails(self, double: ShopifyDouble) -> None:
        broken = make_connector(ParsesMoneyAsFloat)
        with pytest.raises(AssertionError):
            check_money_exact(broken, double)
        broken.close()

    def test_a_connector_ignoring_the_stock_batch_size_fails(self, double: ShopifyDouble) -> None:
        broken = make_connector(PacksEveryLevelIntoOneBatch)
        with pytest.raises(AssertionError, match="break the batch size 250"):
            check_stock_batches(broken, double)
        broken.close()

    def test_a_connector_reordering_stock_levels_fails(self, double: ShopifyDouble) -> None:
        broken = make_connector(SortsLevelsByQuantity)
        with pytest.raises(AssertionError, match="input order lost"):
            check_stock_batches(broken, double)
        broken.close()
