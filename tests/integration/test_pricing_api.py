"""The pricing routes on both backends: auth, seller isolation, exact money in and out, 422 on the
floor, rate changes that flag, the product API repricing, preview and resync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import Container
from tests.conftest import ADMIN_KEY
from tests.integration.pricing_support import PricedWorld, moved

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
RULE: dict[str, Any] = {
    "currency": "eur",
    "base_currency": "USD",
    "conversion_rate": "0.92",
    "markup_percent": "10",
    "fee_percent": "6.5",
    "fee_fixed": "0.20",
    "rounding": "to_99",
}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raw_json(client: TestClient, path: str, body: str, headers: dict[str, str]) -> Any:
    """PUT a body as written, so JSON numbers reach the server as the digits typed."""
    return client.put(
        path, content=body.encode(), headers={**headers, "content-type": "application/json"}
    )


class TestAccess:
    def test_every_route_needs_a_key(self, client: TestClient, container: Container) -> None:
        world = PricedWorld(container)
        base = f"/shops/{world.shop_id}"
        assert client.get(f"{base}/price-rule").status_code == 401
        assert client.put(f"{base}/price-rule", json=RULE).status_code == 401
        assert client.get(f"{base}/prices/preview").status_code == 401
        assert client.post(f"{base}/prices/resync").status_code == 401

    def test_a_seller_sees_only_its_own_shops(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container)
        base = f"/shops/{world.shop_id}"
        other = client.post("/sellers", json={"name": "Other"}, headers=ADMIN).json()["api_key"]
        assert client.put(f"{base}/price-rule", json=RULE, headers=bearer(other)).status_code == 404
        assert client.get(f"{base}/price-rule", headers=ADMIN).status_code == 404  # not stored
        owner = bearer(world.api_key)
        assert client.put(f"{base}/price-rule", json=RULE, headers=owner).status_code == 200
        for response in (
            client.get(f"{base}/price-rule", headers=bearer(other)),
            client.put(
                f"{base}/price-rule/rate", json={"conversion_rate": "1"}, headers=bearer(other)
            ),
            client.get(f"{base}/prices/preview", headers=bearer(other)),
            client.post(f"{base}/prices/preview", json=RULE, headers=bearer(other)),
            client.post(f"{base}/prices/resync", headers=bearer(other)),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["message"] == f"shop {world.shop_id} does not exist"
        assert client.get(f"{base}/price-rule", headers=owner).json()["version"] == 1


class TestPriceRule:
    def test_set_and_read_with_exact_money(self, client: TestClient, container: Container) -> None:
        world = PricedWorld(container)
        body = json.dumps(RULE).replace('"0.92"', "0.92").replace('"0.20"', "0.20")
        response = raw_json(client, f"/shops/{world.shop_id}/price-rule", body, ADMIN)
        assert response.status_code == 200, response.text
        change = response.json()
        assert change["repriced"] == {
            "changed": 2,
            "queued": 2,
            "flagged": [],
            "unchanged": 0,
            "no_cost": 0,
            "skipped": 0,
        }
        rule = client.get(f"/shops/{world.shop_id}/price-rule", headers=ADMIN).json()
        assert rule == change["rule"]
        assert {
            k: rule[k] for k in ("currency", "conversion_rate", "fee_fixed", "markup_fixed")
        } == {
            "currency": "EUR",
            "conversion_rate": "0.92",
            "fee_fixed": "0.20",
            "markup_fixed": "0.00",
        }
        listed = client.get(f"/shops/{world.shop_id}/bindings", headers=ADMIN).json()
        assert [(b["sku"], b["listed_price"]) for b in listed] == [
            ("SUN-M", "20.99"),
            ("SUN-STICKER", "3.99"),
        ]

    def test_a_number_is_read_as_typed_not_as_a_binary_float(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container)
        # Read through a float, 0.92000000000000001 would become 0.92 and be accepted.
        for rate in ("0.9200001", "0.92000000000000001"):
            body = json.dumps(RULE).replace('"0.92"', rate)
            response = raw_json(client, f"/shops/{world.shop_id}/price-rule", body, ADMIN)
            assert response.status_code == 422
            assert (
                f"conversion_rate {rate}: the hub stores at most 6"
                in (response.json()["error"]["message"])
            )

    def test_a_rule_below_the_floor_is_422_naming_the_variants(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container)
        cheap = {**RULE, "markup_percent": "-70", "rounding": "none"}
        response = client.put(f"/shops/{world.shop_id}/price-rule", json=cheap, headers=ADMIN)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "margin_floor_broken"
        assert "(sku SUN-M): price 5.52 EUR is below the margin floor 8.09 EUR" in error["message"]
        assert "(sku SUN-STICKER): price 0.97 EUR" in error["message"]
        assert client.get(f"/shops/{world.shop_id}/price-rule", headers=ADMIN).status_code == 404

    def test_bad_fields_are_422(self, client: TestClient, container: Container) -> None:
        world = PricedWorld(container)
        path = f"/shops/{world.shop_id}/price-rule"
        bad_rounding = client.put(path, json={**RULE, "rounding": "to_98"}, headers=ADMIN)
        assert bad_rounding.status_code == 422
        assert bad_rounding.json()["error"]["fields"][0]["field"] == "body.rounding"
        same = client.put(path, json={**RULE, "currency": "USD"}, headers=ADMIN)
        assert same.status_code == 422
        assert "USD to itself converts at 1" in same.json()["error"]["message"]

    def test_a_rate_change_flags_what_it_would_sell_below_the_floor(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container, sticker_cost="0.50")
        heavy = {**RULE, "conversion_rate": "0.90", "markup_percent": "0", "fee_percent": "10"}
        heavy.update({"fee_fixed": "2.00", "rounding": "none"})
        path = f"/shops/{world.shop_id}/price-rule"
        assert client.put(path, json=heavy, headers=ADMIN).status_code == 200
        response = client.put(f"{path}/rate", json={"conversion_rate": "0.70"}, headers=ADMIN)
        assert response.status_code == 200, response.text
        sticker = world.binding(world.shop_id, world.sticker_id)
        assert response.json()["repriced"]["flagged"] == [sticker.id]
        assert response.json()["rule"]["conversion_rate"] == "0.70"
        listed = client.get(f"/shops/{world.shop_id}/bindings", headers=ADMIN).json()
        assert [(b["sku"], b["listed_price"], b["price_review"] is None) for b in listed] == [
            ("SUN-M", "14", True),
            ("SUN-STICKER", "3.15", False),
        ]


class TestCatalogChanges:
    def test_a_cost_set_through_the_product_api_reprices_only_what_changed(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container)
        client.put(f"/shops/{world.shop_id}/price-rule", json=RULE, headers=ADMIN)
        before = world.versions()
        product = {
            "seller_id": world.seller_id,
            "title": "Sunrise tee",
            "variants": [
                {
                    "sku": "SUN-M",
                    "price": "20.00",
                    "cost": "22.00",
                    "blanks": [
                        {"blank_id": world.tee_id},
                        {"blank_id": world.ink_id, "quantity_per_unit": 2},
                    ],
                },
                {"sku": "SUN-STICKER", "price": "4.50", "cost": "1.00"},
            ],
        }
        response = client.put(f"/products/{world.product.id}", json=product, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert moved(before, world.versions()) == {("shopify", "SUN-STICKER", "price")}
        sun, sticker = client.get(f"/shops/{world.shop_id}/bindings", headers=ADMIN).json()
        assert (sun["listed_price"], sticker["listed_price"]) == ("20.99", "4.99")
        assert "below the margin floor 21.87 EUR" in sun["price_review"]
        document = client.get(f"/products/{world.product.id}", headers=ADMIN).json()
        assert [v["cost"] for v in document["variants"]] == ["22", "1"]

    def test_a_cost_finer_than_the_currency_is_refused(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container)
        product = {
            "seller_id": world.seller_id,
            "title": "Sunrise tee",
            "variants": [{"sku": "SUN-STICKER", "price": "3.50", "cost": "1.005"}],
        }
        for response in (
            client.put(f"/products/{world.product.id}", json=product, headers=ADMIN),
            client.post("/products", json=product, headers=ADMIN),
        ):
            assert response.status_code == 422
            assert (
                "variant 'SUN-STICKER': cost 1.005 USD is finer than the currency's minor"
                in (response.json()["error"]["message"])
            )


class TestPreviewAndResync:
    def test_preview_writes_nothing_and_resync_queues_every_listed_price(
        self, client: TestClient, container: Container
    ) -> None:
        world = PricedWorld(container, sticker_cost=None)
        base = f"/shops/{world.shop_id}"
        client.put(f"{base}/price-rule", json=RULE, headers=ADMIN)
        proposed = client.post(
            f"{base}/prices/preview", json={**RULE, "markup_percent": "-50"}, headers=ADMIN
        )
        assert proposed.status_code == 200
        assert [
            (r["sku"], r["current"], r["new"], r["floor"], r["status"]) for r in proposed.json()
        ] == [
            ("SUN-M", "20.99", "9.99", "8.09", "will_change"),
            ("SUN-STICKER", None, None, None, "no_cost"),
        ]
        before = world.versions()
        rows = client.get(f"{base}/prices/preview", headers=ADMIN).json()
        assert [(r["sku"], r["status"]) for r in rows] == [
            ("SUN-M", "unchanged"),
            ("SUN-STICKER", "no_cost"),
        ]
        assert client.get(f"{base}/price-rule", headers=ADMIN).json()["markup_percent"] == "10"
        resync = client.post(f"{base}/prices/resync", headers=ADMIN)
        assert resync.status_code == 202
        assert (resync.json()["queued"], resync.json()["changed"]) == (1, 0)
        assert moved(before, world.versions()) == {("shopify", "SUN-M", "price")}
