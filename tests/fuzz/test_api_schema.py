"""Schemathesis over the hub's own OpenAPI: every operation, every caller, both databases.

The app runs on the embedded backend (SQLite in a temporary folder, in-process cache) and, when
reachable, on PostgreSQL with Redis (only PostgreSQL refuses NUL characters, 32-bit counts and
over-long text). Two sellers are seeded alike through the API and the import use case: shops on
three marketplaces, a product whose SKUs are bound, a price rule, an image, two orders (one
needing review), jobs (one failed) and an inbound event. Every identifying string of seller A
carries ``ALPHAMARK``, of seller B ``BRAVOMARK``.

Two tests per operation:

* ``test_fuzzed_cases_for_every_caller``: Schemathesis' fuzzing phase, valid and invalid data,
  ``EXAMPLES`` (20) cases or more per operation; half of them have their path ids (and the ids
  inside the body) swapped for seeded ids of either seller, so the other seller's key really
  asks for foreign rows, and a seeded image's media URL is sometimes validly signed;
* ``test_boundary_cases_for_every_caller``: its coverage phase, every parameter and field at its
  limits and just past them, missing required parts, methods the path does not have.

Every case is sent once per caller: seller A's key, seller B's key (the other seller), the
operator's key (so admin-only operations are fuzzed past their 403) and no key (none, or a
malformed or unknown one). Every answer must pass:

* ``not_a_server_error``: no 5xx;
* ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``:
  the status is documented for the operation and the body matches its schema, errors included
  (documented as ``ErrorOut`` by ``hub.api.errors.document_errors``);
* no data of another seller: an answer to a seller never carries the other seller's marker, nor
  the other seller's id in a ``seller_id`` field or one of its shop ids in a ``shop_id`` field;
  an answer to no key carries neither seller's;
* without a key, 401 on every operation whose OpenAPI declares the bearer key (or the refusal of
  a body too large or not JSON, which FastAPI reads before any dependency runs); a valid key is
  never answered 401; operations that prove the caller otherwise give the answers listed in
  ``OPEN_ANSWERS`` to everyone: webhooks (the marketplace's signature: 401, 429 once a source
  keeps failing), the authorization callbacks (single-use state: 401), media URLs (403 without
  a valid signature, 404 for a missing object, the image for a valid one).

Checks left out, and why: ``negative_data_rejection`` (FastAPI accepts what Schemathesis counts
as schema-breaking but is harmless: a repeated scalar query parameter, the last one wins; unknown
query parameters and headers), ``positive_data_acceptance`` (a valid body for an id that does
not exist or is not the caller's is rightly a 404), ``ignored_auth`` (the no-key caller does
that, and tries malformed keys too), ``use_after_free`` / ``ensure_resource_availability``
(stateful), ``missing_required_header`` (no request header is required),
``response_headers_conformance`` (the one declared response header is the ``Retry-After`` of a
503, which only an outage provokes: ``tests/integration/test_db_outage_api.py`` checks it),
``max_response_time`` (timing on a shared CI machine is noise).

Deterministic: Hypothesis is derandomized, with no example database; the anonymous key of a
boundary case is picked by a hash of the case. About 1.5 minutes of CPU for both backends.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.api.app import create_app
from hub.application import orders
from hub.bootstrap import Container, bootstrap
from hub.domain.orders import ImportLine, ImportOrder
from hub.infrastructure.migrations import upgrade
from hub.settings import Settings
from imaging.signed_urls import sign
from imaging.storage import source_key
from sync.infrastructure import operations as ops
from sync.infrastructure.events import IncomingEvent, store_event
from tests.conftest import ADMIN_KEY, Backend, services_backend

EXAMPLES = 20
BASE_URL = "http://testserver"
MARKERS = {"seller_a": "ALPHAMARK", "seller_b": "BRAVOMARK"}
OTHER = {"seller_a": "seller_b", "seller_b": "seller_a"}
CALLERS = ("seller_a", "seller_b", "admin", "anonymous")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What a caller without an API key may get from the operations that do not take one.
OPEN_ANSWERS: dict[str, set[int]] = {
    "GET /healthz": {200},
    "GET /readyz": {200},
    "GET /shops/connect/{marketplace}/return": {200, 422},
    "GET /media/{key}": {200, 403, 404, 422},
    "POST /webhooks/{marketplace}": {401, 404, 413, 429},
    "POST /webhooks/woocommerce/{shop_id}": {200, 401, 413, 422, 429},
    "GET /shops/connect/shopify/callback": {401, 422},
    "GET /shops/connect/etsy/callback": {401, 422},
    "POST /shops/connect/woocommerce/callback": {401, 413, 422},
}

# The schema only: no lifespan runs here, the seeded app answers the calls.
schemathesis.serializer.alias("image/tiff", "application/octet-stream")  # uploads: the bytes
OPENAPI = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(
    OPENAPI, config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
)
boundaries = schemathesis.openapi.from_dict(
    OPENAPI,
    config=schemathesis.Config.from_dict(
        {"phases": {"fuzzing": {"enabled": False}, "examples": {"enabled": False}}}
    ),
)
OPERATIONS = {
    f"{method.upper()} {path}"
    for path, item in schema.raw_schema["paths"].items()
    for method in item
    if method in {"get", "put", "post", "delete", "patch", "head", "options"}
}
CASES: Counter[tuple[str, str]] = Counter()  # fuzzed cases by (backend, operation)

# One process: the last test checks that every operation ran its cases, which needs them all
# in this process (`make test` runs these after the parallel half, with the serial tests).
pytestmark = pytest.mark.single_process


@dataclass
class Seller:
    marker: str
    id: int = 0
    key: str = ""
    shop_ids: list[int] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)
    variant_ids: list[int] = field(default_factory=list)
    order_ids: list[int] = field(default_factory=list)
    order_line_ids: list[int] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    media_keys: list[str] = field(default_factory=list)


@dataclass
class Hub:
    backend: str
    app: FastAPI
    container: Container
    sellers: dict[str, Seller]
    blank_ids: list[int]

    def headers(self, caller: str, anonymous_auth: str | None) -> dict[str, str]:
        if caller == "admin":
            return {"Authorization": f"Bearer {ADMIN_KEY}"}
        if caller in self.sellers:
            return {"Authorization": f"Bearer {self.sellers[caller].key}"}
        return {} if anonymous_auth is None else {"Authorization": anonymous_auth}

    def known(self, name: str) -> list[Any]:
        """Seeded values of both sellers for a parameter or body field name."""
        if name == "blank_id":
            return self.blank_ids
        if name == "seller_id":
            return [seller.id for seller in self.sellers.values()]
        if name == "marketplace":
            return ["shopify", "etsy", "woocommerce"]
        attribute = {
            "shop_id": "shop_ids",
            "product_id": "product_ids",
            "variant_id": "variant_ids",
            "order_id": "order_ids",
            "order_line_id": "order_line_ids",
            "job_id": "job_ids",
            "event_id": "event_ids",
            "key": "media_keys",
        }.get(name)
        if attribute is None:
            return []
        return [value for seller in self.sellers.values() for value in getattr(seller, attribute)]


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "PNG")
    return buffer.getvalue()


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def _seed_seller(
    client: Any, container: Container, seller: Seller, blank_ids: list[int], n: int
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    m, low = seller.marker, seller.marker.lower()
    made = _ok(client.post("/sellers", json={"name": f"{m} Prints"}, headers=admin), 201)
    seller.id, seller.key = made["id"], made["api_key"]
    own = {"Authorization": f"Bearer {seller.key}"}
    product = _ok(
        client.post(
            "/products",
            json={
                "seller_id": seller.id,
                "title": f"{m} sunrise tee",
                "description": f"{m} description",
                "variants": [
                    {
                        "sku": f"{m}-TEE-M",
                        "price": "20.00",
                        "cost": "8.00",
                        "options": {"size": f"{m}-M"},
                        "blanks": [{"blank_id": blank_ids[0], "quantity_per_unit": 1}],
                    },
                    {
                        "sku": f"{m}-STICKER",
                        "price": "3.50",
                        "cost": "1.00",
                        "blanks": [{"blank_id": blank_ids[1], "quantity_per_unit": 2}],
                    },
                ],
            },
            headers=own,
        ),
        201,
    )
    seller.product_ids.append(product["id"])
    seller.variant_ids.extend(product["variant_ids"].values())
    shops = [
        {"marketplace": "shopify", "external_id": f"{low}.myshopify.com", "name": f"{m} Shopify"},
        {"marketplace": "etsy", "external_id": f"{low}-etsy", "name": f"{m} Etsy"},
        {
            "marketplace": "woocommerce",
            "external_id": f"https://{low}.example",
            "name": f"{m} Woo",
            "credentials": {
                "consumer_key": f"ck_{low}",
                "consumer_secret": f"cs_{low}",
                "webhook_secret": f"{m}-secret",
            },
        },
    ]
    for shop in shops:
        created = _ok(
            client.post("/shops", json={"seller_id": seller.id, **shop}, headers=own), 201
        )
        seller.shop_ids.append(created["id"])
    shopify = seller.shop_ids[0]
    _ok(
        client.put(
            f"/shops/{shopify}/bindings",
            json=[
                {
                    "variant_id": variant_id,
                    "external_listing_id": f"{m}-LISTING-{index}",
                    "external_variant_id": f"{m}-VARIANT-{index}",
                    "external_inventory_item_id": f"{m}-INVENTORY-{index}",
                }
                for index, variant_id in enumerate(seller.variant_ids)
            ],
            headers=own,
        )
    )
    _ok(
        client.put(
            f"/shops/{shopify}/price-rule",
            json={
                "currency": "EUR",
                "base_currency": "USD",
                "conversion_rate": "0.92",
                "markup_percent": "10",
                "fee_percent": "6.5",
                "fee_fixed": "0.20",
                "rounding": "to_99",
            },
            headers=own,
        )
    )
    image = _ok(
        client.post(
            f"/products/{product['id']}/images",
            data=_png((10 * n, 120, 200)),
            headers={**own, "Content-Type": "image/png"},
        ),
        201,
    )
    seller.media_keys.append(source_key(image["source_sha256"], "png"))
    for index, sku in enumerate((f"{m}-TEE-M", f"{m}-UNKNOWN-SKU")):  # the second needs review
        with container.uow() as uow:
            outcome = orders.import_order(
                uow,
                ImportOrder(
                    shop_id=shopify,
                    external_id=f"{m}-ORDER-{index}",
                    external_number=f"#{m}-{index}",
                    external_status="paid",
                    external_updated_at=datetime(2026, 11, 1, 12, index, tzinfo=UTC),
                    placed_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
                    currency="USD",
                    total=Decimal("40.00"),
                    paid=True,
                    cancelled=False,
                    customer_name=f"{m} Buyer",
                    customer_email=f"buyer@{low}.example",
                    shipping_address={"city": f"{m} City", "country": "GB"},
                    lines=(
                        ImportLine(
                            f"{m}-LINE-{index}",
                            2,
                            Decimal("20.00"),
                            sku=sku,
                            external_variant_id=f"{m}-VARIANT-0" if index == 0 else None,
                            title=f"{m} line",
                        ),
                    ),
                ),
            )
            uow.commit()
        assert outcome.order.id is not None
        seller.order_ids.append(outcome.order.id)
        seller.order_line_ids.extend(line.id for line in outcome.order.lines if line.id)
    for shop_id in seller.shop_ids[:2]:
        job = _ok(client.post(f"/shops/{shop_id}/bindings/auto", headers=own), 202)
        seller.job_ids.append(job["id"])
    with container.engine.begin() as db:  # one failed job, so a retry has something to do
        ops.finish(db, seller.job_ids[0], ops.FAILED, error=f"{m} listing scan refused")
    stored = store_event(
        container.engine,
        IncomingEvent(
            marketplace="shopify",
            event_key=f"{m}-EVENT-1",
            topic="orders/create",
            body=json.dumps({"id": f"{m}-ORDER-0"}).encode(),
            resource_id=f"{m}-ORDER-0",
            shop_reference=f"{low}.myshopify.com",
        ),
    )
    assert stored.id is not None
    seller.event_ids.append(stored.id)


@pytest.fixture(scope="module", params=["embedded", "services"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """SQLite, and PostgreSQL with Redis when reachable: only PostgreSQL refuses NUL characters,
    32-bit counts and over-long text, so both are fuzzed."""
    # Production's answer to loopback and private api_base_urls, so no connector call leaves;
    # a held webhook source's 429 is not held back (the tarpit would only slow the run).
    if request.param == "embedded":
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("fuzz") / "var",
            admin_api_key=ADMIN_KEY,
            allow_private_urls=False,
            webhook_failure_delay_seconds=0,
        )
        container = bootstrap(settings)
        upgrade(container.engine)
        container.close()
        yield Backend("embedded", settings)
        return
    for services in services_backend(request):
        yield Backend(
            "services",
            services.settings.model_copy(
                update={"allow_private_urls": False, "webhook_failure_delay_seconds": 0}
            ),
        )


@pytest.fixture(scope="module")
def hub(backend: Backend) -> Iterator[Hub]:
    container = bootstrap(backend.settings)
    app = create_app(container=container)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        with schemathesis_asgi.get_client(app) as client:
            blank_ids = [
                _ok(
                    client.post(
                        "/blanks",
                        json={"code": code, "name": f"Blank {code}", "on_hand": 50},
                        headers=admin,
                    ),
                    201,
                )["id"]
                for code in ("FUZZ-TEE-M", "FUZZ-INK")
            ]
            sellers = {caller: Seller(marker) for caller, marker in MARKERS.items()}
            for n, seller in enumerate(sellers.values()):
                _seed_seller(client, container, seller, blank_ids, n)
            yield Hub(backend.name, app, container, sellers, blank_ids)
    finally:
        schemathesis_asgi.shutdown_lifespans()
        container.close()


ID_FIELDS = ("seller_id", "shop_id", "variant_id", "blank_id", "order_line_id")


def _retarget(case: schemathesis.Case, hub: Hub, data: st.DataObject) -> None:
    """Half the time, aim the case at seeded rows of either seller."""
    if not data.draw(st.booleans(), label="aim at seeded ids"):
        return
    path = dict(case.path_parameters or {})
    for name in path:
        choices = hub.known(name)
        if choices:
            path[name] = data.draw(st.sampled_from(choices), label=name)
    case.path_parameters = path  # assigned: schemathesis re-judges what it generated
    if case.operation.path.startswith("/webhooks/"):  # past "no signature" to checking one
        forged = base64.b64encode(data.draw(st.binary(min_size=32, max_size=32))).decode()
        case.headers = {**(case.headers or {}), **_signed_like(path, forged)}
    if case.operation.path == "/media/{key}" and data.draw(st.booleans(), label="signed"):
        signed = sign(
            path["key"],
            secret=hub.app.state.media_url_secret,
            base_url="",
            ttl_seconds=2 * 24 * 3600,
        )
        query = parse_qs(urlsplit(signed).query)
        case.query = {"expires": query["expires"][0], "signature": query["signature"][0]}
    case.body = _retarget_body(case.body, hub, data)


def _signed_like(path: dict[str, Any], signature: str) -> dict[str, str]:
    """The headers a marketplace signs a delivery with, carrying a forged signature."""
    marketplace = path.get("marketplace", "woocommerce")
    if marketplace == "shopify":
        return {
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": "fuzz.myshopify.com",
            "X-Shopify-Event-Id": signature[:16],
        }
    if marketplace == "etsy":
        return {
            "webhook-id": signature[:16],
            "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
            "webhook-signature": f"v1,{signature}",
        }
    return {
        "X-WC-Webhook-Signature": signature,
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-Source": "https://fuzz.example/",
        "X-WC-Webhook-Delivery-ID": signature[:8],
    }


def _retarget_body(value: Any, hub: Hub, data: st.DataObject) -> Any:
    if isinstance(value, list):
        return [_retarget_body(item, hub, data) for item in value]
    if not isinstance(value, dict):
        return value
    changed = {}
    for key, item in value.items():
        if key in ID_FIELDS and isinstance(item, int) and not isinstance(item, bool):
            changed[key] = data.draw(st.sampled_from(hub.known(key)), label=key)
        else:
            changed[key] = _retarget_body(item, hub, data)
    return changed


def _secured(case: schemathesis.Case) -> bool:
    return bool(case.operation.definition.raw.get("security"))


def _unreadable_body(response: Any) -> bool:
    """Refused before the key is checked: FastAPI reads the JSON body before any dependency
    runs, and the size limit comes first of all. Nothing is revealed either way."""
    if response.status_code == 413:
        return True
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if response.status_code == 400:
        return bool(error["code"] == "bad_request")
    return response.status_code == 422 and any(
        problem["message"] == "JSON decode error" for problem in error.get("fields") or []
    )


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _leaks(hub: Hub, caller: str, response: Any) -> list[str]:
    """What of another seller's data the body shows this caller."""
    if caller == "admin":
        return []
    others = [OTHER[caller]] if caller in OTHER else list(MARKERS)
    text = response.content.decode("utf-8", "replace")
    found = [
        f"{hub.sellers[other].marker!r} in the body"
        for other in others
        if hub.sellers[other].marker.lower() in text.lower()
    ]
    try:
        document = json.loads(text)
    except ValueError:
        return found
    for other in others:
        seller = hub.sellers[other]
        for key, item in _walk(document):
            if key == "seller_id" and item == seller.id:
                found.append(f"seller_id {item} (of {other})")
            if key == "shop_id" and item in seller.shop_ids:
                found.append(f"shop_id {item} (of {other})")
    return found


ANONYMOUS_AUTH = st.one_of(
    st.none(),
    st.sampled_from(["", "Bearer", "Bearer ", "bearer hub_nope", "Basic dXNlcjpwYXNz"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
        lambda token: f"Bearer {token}"
    ),
)


def _send_as_every_caller(case: schemathesis.Case, hub: Hub, anonymous_auth: str | None) -> None:
    label = f"{case.operation.method.upper()} {case.path}"
    probe = case.method.upper() != case.operation.method.upper()  # a method the path lacks
    generated = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() != "authorization"
    }
    for caller in CALLERS:
        # Assigned, not passed to call(): the case then shows what was sent.
        headers = hub.headers(caller, anonymous_auth)
        case.headers = {**generated, **headers}
        response = case.call_and_validate(base_url=BASE_URL, app=hub.app, checks=CHECKS)
        # Schemathesis drops the key itself on its "missing credentials" cases.
        if response.request.headers.get("Authorization") != headers.get("Authorization"):
            caller = "anonymous"
        context = f"{label} as {caller}: {response.status_code} {response.content[:300]!r}"
        leaks = _leaks(hub, caller, response)
        assert not leaks, f"{context}\nshows another seller's data: {leaks}"
        if probe:  # 405, or a sibling route's answer (GET /shops/connect is /shops/{shop_id})
            assert 400 <= response.status_code < 500, context
        elif not _secured(case):  # proves the caller otherwise: the same answers for anyone
            assert response.status_code in OPEN_ANSWERS[label], context
        elif caller == "anonymous":
            assert response.status_code == 401 or _unreadable_body(response), (
                f"{context}\nanswered without a valid key"
            )
        else:
            assert response.status_code != 401, f"{context}\na valid key was refused"


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@schema.parametrize()
@schema.given(data=st.data())
@SETTINGS
def test_fuzzed_cases_for_every_caller(
    case: schemathesis.Case, data: st.DataObject, hub: Hub
) -> None:
    """Schemathesis' fuzzing phase (valid and invalid data), aimed at seeded ids half the time."""
    CASES[hub.backend, f"{case.method.upper()} {case.path}"] += 1
    _retarget(case, hub, data)
    _send_as_every_caller(case, hub, data.draw(ANONYMOUS_AUTH, label="anonymous Authorization"))


@boundaries.parametrize()
@SETTINGS
def test_boundary_cases_for_every_caller(case: schemathesis.Case, hub: Hub) -> None:
    """Schemathesis' coverage phase: each parameter and field at its limits and just past them
    (the largest ids, empty and over-long text, missing required fields, wrong types). It takes
    no extra strategies, so the cases go out as generated."""
    digest = hashlib.sha256(repr(case).encode()).digest()
    junk = [None, "", "Bearer ", "bearer hub_nope", f"Bearer hub_{digest.hex()[:20]}"]
    _send_as_every_caller(case, hub, junk[digest[0] % len(junk)])


def test_every_operation_was_fuzzed_enough(request: pytest.FixtureRequest) -> None:
    """Nothing is left out silently: every operation of the OpenAPI ran its cases, on each
    backend whose fuzz tests were all selected and ran."""
    assert set(OPEN_ANSWERS) <= OPERATIONS, "OPEN_ANSWERS names an operation that is gone"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("under xdist each worker runs only a share of the operations")
    selected = [
        item.name
        for item in request.session.items
        if item.name.startswith("test_fuzzed_cases_for_every_caller[")
    ]
    whole = {
        name
        for name in ("embedded", "services")
        if sum(item.endswith(f"[{name}]") for item in selected) == len(OPERATIONS)
    }
    backends = whole & {name for name, _ in CASES}
    if not backends:
        pytest.skip("the fuzz tests of no backend were all selected and run in this session")
    for name in sorted(backends):
        missing = sorted(OPERATIONS - {label for ran, label in CASES if ran == name})
        assert not missing, f"{name}: operations never fuzzed: {missing}"
    few = {key: count for key, count in CASES.items() if key[0] in backends and count < EXAMPLES}
    assert not few, f"operations with fewer than {EXAMPLES} fuzzed cases: {few}"


ERROR = "ErrorOut"
READINESS_SHAPE = "ReadinessOut"  # a not-ready /readyz names each dependency's answer


def test_the_openapi_is_valid_and_documents_the_key_and_the_errors() -> None:
    schema.validate()  # raises on an invalid OpenAPI document
    components = OPENAPI["components"]
    assert components["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in components["schemas"]  # a shape the API never sends
    for label in sorted(OPERATIONS):
        method, path = label.split(" ", 1)
        operation = OPENAPI["paths"][path][method.lower()]
        if label in OPEN_ANSWERS:
            assert "security" not in operation, f"{label} takes no API key"
        else:
            assert operation.get("security") == [{"ApiKey": []}], f"{label} declares no key"
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = answer["content"]["application/json"]["schema"]
                shape = READINESS_SHAPE if (label, status) == ("GET /readyz", "503") else ERROR
                assert content == {"$ref": f"#/components/schemas/{shape}"}, (label, status)
