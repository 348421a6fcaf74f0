"""Seeding a catalog from one JSON document: the pure checks, the use case on both backends, and
`POST /catalog/import`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.api.catalog import run_catalog_import
from hub.application.catalog_import import parse_document, parse_json
from hub.application.sellers import create_seller
from hub.bootstrap import Container
from hub.domain.errors import Forbidden, InvalidInput
from hub.domain.sellers import Principal
from tests.conftest import ADMIN_KEY
from tests.factories import ADMIN, World

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def document(seller_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "seller_id": seller_id,
        "blanks": [
            {"code": "HOODIE-L", "name": "Hoodie L", "on_hand": 12},
            {"code": "TEE-M", "name": "Tee M (already there)", "on_hand": 999},
        ],
        "products": [
            {
                "title": "Night hoodie",
                "currency": "eur",
                "variants": [
                    {
                        "sku": "NIGHT-L",
                        "price": "45.50",
                        "options": {"size": "L"},
                        "blanks": [{"code": "HOODIE-L", "quantity": 1}],
                    }
                ],
            },
            {
                "title": "Sunrise tee again",
                "variants": [{"sku": "SUN-M", "price": 20, "blanks": [{"code": "TEE-M"}]}],
            },
        ],
        **extra,
    }


class TestParseDocument:
    def test_reads_prices_exactly_and_applies_defaults(self) -> None:
        parsed = parse_json(json.dumps(document(1)).replace('"45.50"', "45.50"))
        hoodie = parsed.products[0]
        assert hoodie.currency == "EUR"
        assert hoodie.variants[0].price == Decimal("45.50")
        assert parsed.products[1].variants[0].blanks == (("TEE-M", 1),)
        assert parsed.products[1].currency == "USD"

    def test_names_every_bad_item_at_once(self) -> None:
        bad = {
            "seller_id": 1,
            "blanks": [{"code": "A", "on_hand": -3}, {"code": "A", "name": "again"}],
            "products": [
                {"title": "One", "variants": [{"sku": "X", "price": "1", "colour": "red"}]},
                {"title": "Two", "variants": [{"sku": "X", "price": -1}]},
                {"title": "Three", "variants": []},
            ],
        }
        with pytest.raises(InvalidInput) as raised:
            parse_document(bad)
        message = raised.value.message
        assert "blank 'A': on_hand must be a whole number >= 0, got -3" in message
        assert "blank 'A': listed twice" in message
        assert "variant 'X': unknown field(s) colour" in message
        assert "variant 'X': price must be a number >= 0, got -1" in message
        assert "SKU 'X' appears twice in the file (products 'One' and 'Two')" in message
        assert "products[2] 'Three': variants must be a non-empty list" in message
        assert message.endswith("nothing was imported")

    def test_bad_json_says_where(self) -> None:
        with pytest.raises(InvalidInput, match=r"not valid JSON: .*line 1 column 16"):
            parse_json('{"seller_id": 1')


class TestImportCatalog:
    def test_creates_missing_blanks_and_new_products_and_skips_known_skus(
        self, container: Container
    ) -> None:
        world = World(container, bind=False)
        report = run_catalog_import(container, parse_document(document(world.seller_id)), ADMIN)
        assert report.blanks_created == ["HOODIE-L"]
        assert report.blanks_reused == ["TEE-M"]
        assert [p["title"] for p in report.products_created] == ["Night hoodie"]
        assert report.products_skipped == [
            {
                "title": "Sunrise tee again",
                "skus": ["SUN-M"],
                "reason": "its SKUs exist already",
            }
        ]
        assert world.blank(world.tee_id) == (10, 0)  # a reused blank's count is left alone
        with container.uow() as uow:
            product = uow.catalog.get_product(report.products_created[0]["id"])
            hoodie = uow.catalog.variants_by_sku(world.seller_id, ["NIGHT-L"])
        assert product is not None
        assert product.currency == "EUR"
        assert product.variants[0].price == Decimal("45.50")
        assert [use.quantity_per_unit for use in product.variants[0].blanks] == [1]
        assert hoodie == {"NIGHT-L": [product.variants[0].id]}
        again = run_catalog_import(container, parse_document(document(world.seller_id)), ADMIN)
        assert again.blanks_created == []
        assert again.products_created == []
        assert len(again.products_skipped) == 2

    def test_an_unknown_blank_code_writes_nothing(self, container: Container) -> None:
        world = World(container, bind=False)
        bad = document(world.seller_id)
        bad["products"][0]["variants"][0]["blanks"].append({"code": "NOPE", "quantity": 2})
        with pytest.raises(InvalidInput, match="variant 'NIGHT-L': unknown blank code 'NOPE'"):
            run_catalog_import(container, parse_document(bad), ADMIN)
        with container.uow() as uow:
            assert uow.catalog.variants_by_sku(world.seller_id, ["NIGHT-L"]) == {}
        dry = run_catalog_import(container, parse_document(bad), ADMIN, dry_run=True)
        assert len(dry.errors) == 1
        assert "NOPE" in dry.errors[0]

    def test_a_seller_may_not_create_blanks(self, container: Container) -> None:
        world = World(container, bind=False)
        with pytest.raises(Forbidden, match="HOODIE-L do not exist; blanks are created"):
            run_catalog_import(
                container, parse_document(document(world.seller_id)), world.principal
            )


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


class TestImportEndpoint:
    def test_admin_imports_and_a_seller_imports_its_own_products(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container, bind=False)
        response = client.post(
            "/catalog/import", json=document(world.seller_id), headers=ADMIN_HEADERS
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["blanks_created"] == ["HOODIE-L"]
        assert body["products_created"][0]["skus"] == ["NIGHT-L"]
        own = {
            "seller_id": world.seller_id,
            "products": [{"title": "Cap", "variants": [{"sku": "CAP", "price": "9.99"}]}],
        }
        seller = {"Authorization": f"Bearer {world.api_key}"}
        response = client.post("/catalog/import", json=own, headers=seller)
        assert response.status_code == 200, response.text
        assert response.json()["products_created"][0]["title"] == "Cap"

    def test_another_sellers_catalog_is_forbidden_and_bad_items_are_422(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container, bind=False)
        with container.uow() as uow:
            other, _ = create_seller(uow, "Other")
            uow.commit()
        seller = {"Authorization": f"Bearer {world.api_key}"}
        foreign = {"seller_id": other.id, "products": []}
        response = client.post("/catalog/import", json=foreign, headers=seller)
        assert response.status_code == 403
        bad = document(world.seller_id)
        bad["blanks"][0]["on_hand"] = -1
        response = client.post("/catalog/import", json=bad, headers=ADMIN_HEADERS)
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert "blank 'HOODIE-L': on_hand must be a whole number >= 0" in message
        with container.uow() as uow:
            assert uow.catalog.variants_by_sku(world.seller_id, ["NIGHT-L"]) == {}

    def test_dry_run_reports_and_writes_nothing(
        self, client: TestClient, container: Container
    ) -> None:
        world = World(container, bind=False)
        response = client.post(
            "/catalog/import?dry_run=true", json=document(world.seller_id), headers=ADMIN_HEADERS
        )
        assert response.status_code == 200
        assert response.json()["dry_run"] is True
        assert response.json()["products_created"] == [
            {"title": "Night hoodie", "id": None, "skus": ["NIGHT-L"]}
        ]
        with container.uow() as uow:
            assert uow.catalog.variants_by_sku(world.seller_id, ["NIGHT-L"]) == {}


def test_seller_principal_for_another_seller_is_refused_in_the_use_case(
    container: Container,
) -> None:
    world = World(container, bind=False)
    stranger = Principal(seller_id=world.seller_id + 100)
    with pytest.raises(Forbidden, match="only import into its own seller"):
        run_catalog_import(container, parse_document({"seller_id": world.seller_id}), stranger)
