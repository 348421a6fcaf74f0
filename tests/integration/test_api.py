"""The HTTP API end to end on both backends: auth, isolation, errors, projections, cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hub.api.app import create_app
from hub.bootstrap import Container
from tests.conftest import ADMIN_KEY
from tests.factories import World, later

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class StatementCounter:
    def __init__(self, container: Container) -> None:
        self.count = 0
        self._engine = container.engine

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN is not a query
            self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self._engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._count)


class TestAuthentication:
    def test_missing_or_unknown_key_is_401_json(self, client: TestClient) -> None:
        for headers in ({}, bearer("hub_nope")):
            response = client.get("/orders", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"

    def test_a_body_that_is_not_json_meets_the_key_check_first(self, client: TestClient) -> None:
        """FastAPI decodes the body before any dependency runs: without a key the answer must
        still be 401, and only a caller with a key learns that the body is unreadable."""
        not_json, content_type = b"{not json", {"content-type": "application/json"}
        for key in ({}, bearer("hub_nope")):
            response = client.post("/blanks", content=not_json, headers={**content_type, **key})
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
        response = client.post("/blanks", content=not_json, headers={**content_type, **ADMIN})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"

    def test_health_checks_are_open(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "cache": "ok"}

    def test_admin_only_endpoints_refuse_seller_keys(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        response = client.post(
            "/blanks", json={"code": "X", "name": "X"}, headers=bearer(world.api_key)
        )
        assert response.status_code == 403
        assert (
            client.post("/blanks", json={"code": "X", "name": "X"}, headers=ADMIN).status_code
            == 201
        )


class TestSellerIsolation:
    def test_a_seller_cannot_see_another_sellers_order_or_product(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        order_id = world.import_order().order.id
        other = client.post("/sellers", json={"name": "Other"}, headers=ADMIN).json()["api_key"]
        assert client.get(f"/orders/{order_id}", headers=bearer(world.api_key)).status_code == 200
        # Same answer on a cache hit as on a miss: the owner is checked on every read.
        for _ in range(2):
            assert client.get(f"/orders/{order_id}", headers=bearer(other)).status_code == 404
            product = client.get(f"/products/{world.product.id}", headers=bearer(other))
            assert product.status_code == 404
        assert client.get("/orders", headers=bearer(other)).json()["items"] == []
        assert (
            client.get(f"/shops/{world.shop_id}/bindings", headers=bearer(other)).status_code == 404
        )


class TestErrors:
    def test_validation_error_names_the_field(self, client: TestClient) -> None:
        response = client.post("/sellers", json={"name": ""}, headers=ADMIN)
        assert response.status_code == 422
        body = response.json()["error"]
        assert body["code"] == "validation_error"
        assert body["fields"][0]["field"] == "body.name"

    def test_body_over_the_limit_is_413_with_or_without_content_length(
        self, client: TestClient, container: Container
    ) -> None:
        limit = container.settings.max_body_bytes
        big = b'{"name": "' + b"x" * limit + b'"}'
        declared = client.post(
            "/sellers", content=big, headers={**ADMIN, "content-type": "application/json"}
        )
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]

        streamed = client.post(
            "/sellers", content=chunks(), headers={**ADMIN, "content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "body_too_large"

    def test_shipped_cannot_be_set_through_the_status_endpoint(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        order_id = world.import_order().order.id
        headers = bearer(world.api_key)
        assert (
            client.put(
                f"/orders/{order_id}/status", json={"status": "in_production"}, headers=headers
            ).status_code
            == 200
        )
        refused = client.put(
            f"/orders/{order_id}/status", json={"status": "shipped"}, headers=headers
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "invalid_transition"


class TestOrderReads:
    def test_list_filters_and_pages_with_a_cursor(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        ids = [world.import_order(str(6000 + n)).order.id for n in range(5)]
        headers = bearer(world.api_key)
        first = client.get("/orders", params={"limit": 2}, headers=headers).json()
        assert [item["id"] for item in first["items"]] == [ids[4], ids[3]]
        second = client.get(
            "/orders", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
        ).json()
        assert [item["id"] for item in second["items"]] == [ids[2], ids[1]]
        last = client.get(
            "/orders", params={"limit": 2, "cursor": second["next_cursor"]}, headers=headers
        ).json()
        assert [item["id"] for item in last["items"]] == [ids[0]]
        assert last["next_cursor"] is None
        assert (
            client.get("/orders", params={"status": "shipped"}, headers=headers).json()["items"]
            == []
        )
        assert (
            len(
                client.get("/orders", params={"shop_id": world.shop_id}, headers=headers).json()[
                    "items"
                ]
            )
            == 5
        )
        assert (
            client.get("/orders", params={"needs_review": True}, headers=headers).json()["items"]
            == []
        )

    def test_list_and_detail_use_a_fixed_number_of_statements(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        for n in range(30):
            world.import_order(str(7000 + n))
        with StatementCounter(container) as listing:
            page = client.get("/orders", params={"limit": 50}, headers=ADMIN)
        assert len(page.json()["items"]) == 30
        assert listing.count == 1
        with StatementCounter(container) as detail:
            client.get(f"/orders/{page.json()['items'][0]['id']}", headers=ADMIN)
        assert detail.count <= 3

    def test_detail_is_cached_and_a_write_invalidates_it(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        order_id = world.import_order().order.id
        headers = bearer(world.api_key)
        miss = client.get(f"/orders/{order_id}", headers=headers)
        hit = client.get(f"/orders/{order_id}", headers=headers)
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
        assert hit.json() == miss.json()
        assert hit.json()["lines"][0]["reserved_quantity"] == 2

        client.put(f"/orders/{order_id}/status", json={"status": "in_production"}, headers=headers)
        after_write = client.get(f"/orders/{order_id}", headers=headers)
        assert after_write.headers["x-cache"] == "miss"
        assert after_write.json()["status"] == "in_production"
        assert after_write.json()["version"] == miss.json()["version"] + 1

        world.import_order(quantity=1, updated=later(1))  # a marketplace update, outside the API
        reimported = client.get(f"/orders/{order_id}", headers=headers).json()
        assert reimported["lines"][0]["quantity"] == 1

    def test_metrics_count_hits_and_misses(self, client: TestClient, container: Container) -> None:
        world = World(container)
        for _ in range(3):
            client.get(f"/products/{world.product.id}", headers=ADMIN)
        text = client.get("/metrics", headers=ADMIN).text
        assert 'hub_cache_reads_total{kind="product",result="miss"} 1' in text
        assert 'hub_cache_reads_total{kind="product",result="hit"} 2' in text


class TestWrites:
    def test_catalog_binding_and_fulfillment_flow(
        self, client: TestClient, container: Container
    ) -> None:
        seller = client.post("/sellers", json={"name": "Flow"}, headers=ADMIN).json()
        key = bearer(seller["api_key"])
        blank = client.post(
            "/blanks", json={"code": "MUG", "name": "Mug", "on_hand": 5}, headers=ADMIN
        ).json()
        product = client.post(
            "/products",
            json={
                "seller_id": seller["id"],
                "title": "Mug",
                "variants": [
                    {"sku": "MUG-1", "price": "12.50", "blanks": [{"blank_id": blank["id"]}]}
                ],
            },
            headers=key,
        ).json()
        variant_id = product["variant_ids"]["MUG-1"]
        shop = client.post(
            "/shops",
            json={
                "seller_id": seller["id"],
                "marketplace": "etsy",
                "external_id": "98765",
                "name": "Mugs on Etsy",
                "stock_buffer": 1,
                "credentials": {"refresh_token": "very-secret"},
            },
            headers=key,
        )
        assert shop.status_code == 201
        assert "very-secret" not in shop.text
        shop_id = shop.json()["id"]
        bound = client.put(
            f"/shops/{shop_id}/bindings",
            json=[
                {
                    "variant_id": variant_id,
                    "external_listing_id": "L-1",
                    "external_variant_id": "P-1",
                }
            ],
            headers=key,
        ).json()
        assert bound[0]["available_quantity"] == 4  # 5 on hand - buffer 1
        assert set(bound[0]["push"]) == {"listing", "images"}

        restock = client.post(f"/blanks/{blank['id']}/stock", json={"delta": 10}, headers=ADMIN)
        assert restock.json()["on_hand"] == 15
        bindings = client.get(f"/shops/{shop_id}/bindings", headers=key).json()
        assert bindings[0]["available_quantity"] == 14
        assert (
            bindings[0]["push"]["listing"]["desired_version"]
            > bound[0]["push"]["listing"]["desired_version"]
        )

        duplicate = client.post(
            "/products",
            json={
                "seller_id": seller["id"],
                "title": "Again",
                "variants": [{"sku": "MUG-1", "price": "1"}],
            },
            headers=key,
        )
        assert duplicate.status_code == 409

        paused = client.post(f"/shops/{shop_id}/pause", headers=key).json()
        assert paused["status"] == "paused"
        assert client.post(f"/shops/{shop_id}/resume", headers=key).json()["status"] == "active"
        assert (
            client.delete(f"/shops/{shop_id}/bindings/{variant_id}", headers=key).status_code == 204
        )
        assert client.get(f"/shops/{shop_id}/bindings", headers=key).json() == []

    def test_fulfillment_endpoint_ships_the_order(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container)
        order = world.import_order(quantity=2).order
        headers = bearer(world.api_key)
        line_id = order.lines[0].id
        too_many = client.post(
            f"/orders/{order.id}/fulfillments",
            json={
                "carrier": "UPS",
                "tracking_number": "1Z",
                "lines": [{"order_line_id": line_id, "quantity": 3}],
            },
            headers=headers,
        )
        assert too_many.status_code == 409
        done = client.post(
            f"/orders/{order.id}/fulfillments",
            json={
                "carrier": "UPS",
                "tracking_number": "1Z",
                "lines": [{"order_line_id": line_id, "quantity": 2}],
            },
            headers=headers,
        )
        assert done.status_code == 201
        assert done.json()["order"]["status"] == "shipped"
        detail = client.get(f"/orders/{order.id}", headers=headers).json()
        assert detail["fulfillments"][0]["lines"] == [{"order_line_id": line_id, "quantity": 2}]
        assert world.blank(world.tee_id) == (8, 0)
