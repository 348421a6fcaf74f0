"""Shopify shop onboarding: the app's installation and its webhook subscriptions, end to end
between ``ShopifyConnector`` and ``ShopifySandbox`` over real HTTP.

The installation is Shopify's OAuth authorization code grant
(https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant):
the shop owner is sent to ``/admin/oauth/authorize``, Shopify redirects back with ``code``,
``hmac``, ``host``, ``shop``, ``state`` and ``timestamp``, the ``hmac`` being the hex
HMAC-SHA256 (keyed with the client secret) of the other parameters sorted and joined as
``k=v`` with ``&``; the code is exchanged once at ``/admin/oauth/access_token``. Subscriptions
are managed with ``webhookSubscriptionCreate`` / ``webhookSubscriptions``, whose address field
is ``uri`` (https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces), a duplicate
being refused with "Address for this topic has already been taken"
(https://shopify.dev/docs/api/admin-graphql/latest/enums/PubSubWebhookSubscriptionCreateUserErrorCode).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from connectors.contract import (
    AuthError,
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    ConnectedShop,
    ConnectorConfig,
    NotFound,
    PermanentError,
    ShopAuthorization,
    ShopContext,
    WebhookRegistry,
)
from connectors.ratelimit import InProcessRateLimiter
from connectors.shopify.connector import DEFAULT_SCOPES, ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from hub.domain.errors import InvalidInput
from tests.contract.conftest import FakeClock, Switchboard
from tests.contract.shopify_double import CURRENT_SECRET, FAST_RESTORE, PREVIOUS_SECRET

CLIENT_ID = "hub-client-id"
REDIRECT_URI = "https://hub.example/oauth/shopify/callback"
HOOKS = "https://hub.example/webhooks/shopify"
STATE = "state-4f1c9b"
CALLBACK_KEYS = {"code", "hmac", "host", "shop", "state", "timestamp"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> ShopifySandbox:
    return ShopifySandbox(
        client_id=CLIENT_ID,
        client_secret=CURRENT_SECRET,
        restore_rate=FAST_RESTORE,
        clock=clock,
    )


@pytest.fixture
def base_url(shopify_server: tuple[Switchboard, str], sandbox: ShopifySandbox) -> Iterator[str]:
    switchboard, url = shopify_server
    switchboard.target = sandbox
    yield url
    switchboard.target = None


def make_connector(**credentials: Any) -> ShopifyConnector:
    config = ConnectorConfig(
        app_credentials={
            "client_id": CLIENT_ID,
            "client_secret": CURRENT_SECRET,
            "client_secret_previous": PREVIOUS_SECRET,
            **credentials,
        },
        api_version="2026-04",
        http_timeout_seconds=5.0,
    )
    return ShopifyConnector(config, rate_limiter=InProcessRateLimiter(max_inline_wait=1.0))


@pytest.fixture
def connector() -> Iterator[ShopifyConnector]:
    built = make_connector()
    yield built
    built.close()


def start_for(sandbox: ShopifySandbox, base_url: str, **changes: Any) -> AuthorizationStart:
    start = AuthorizationStart(
        state=STATE,
        redirect_uri=REDIRECT_URI,
        shop_hint=sandbox.shop_domain,
        api_base_url=base_url,
    )
    return replace(start, **changes)


def approve(authorization_url: str) -> dict[str, str]:
    """Play the shop owner's browser: open the consent page, stop at Shopify's redirect to our
    callback (never follow it), and return that redirect's query."""
    with httpx.Client(follow_redirects=False, timeout=5.0) as browser:
        response = browser.get(authorization_url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(f"{REDIRECT_URI}?"), location
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


def sign(query: dict[str, str], secret: str) -> dict[str, str]:
    """Shopify's documented scheme, computed here independently of both sides."""
    message = "&".join(f"{key}={query[key]}" for key in sorted(query) if key != "hmac")
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {**query, "hmac": digest}


def install(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> tuple[ConnectedShop, ShopContext]:
    start = start_for(sandbox, base_url)
    callback = AuthorizationCallback(query=approve(connector.authorization_url(start)))
    assert connector.callback_state(callback) == STATE
    connected = connector.complete_authorization(callback, start)
    shop = ShopContext(
        shop_id=7,
        external_id=connected.external_id,
        credentials=connected.credentials,
        api_base_url=connected.api_base_url,
        location_id=connected.location_id,
    )
    return connected, shop


# --------------------------------------------------------------------------------------------
# The authorization URL
# --------------------------------------------------------------------------------------------


def test_the_connector_is_a_shop_authorization_and_a_webhook_registry(
    connector: ShopifyConnector,
) -> None:
    assert isinstance(connector, ShopAuthorization)
    assert isinstance(connector, WebhookRegistry)
    assert connector.webhook_topics == ("orders/create", "orders/updated", "app/uninstalled")


def test_the_authorization_url_names_the_app_its_scopes_the_callback_and_the_state(
    connector: ShopifyConnector,
) -> None:
    """https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    ("Redirect to the grant screen"): ``https://{shop}.myshopify.com/admin/oauth/authorize``
    with ``client_id``, ``scope`` (comma-separated), ``redirect_uri`` and ``state``; no
    ``grant_options[]``, so the token is offline."""
    start = AuthorizationStart(
        state=STATE, redirect_uri=REDIRECT_URI, shop_hint="Example-Shop.myshopify.com"
    )
    url = urlsplit(connector.authorization_url(start))
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "example-shop.myshopify.com",
        "/admin/oauth/authorize",
    )
    query = dict(parse_qsl(url.query))
    assert query == {
        "client_id": CLIENT_ID,
        "scope": ",".join(DEFAULT_SCOPES),
        "redirect_uri": REDIRECT_URI,
        "state": STATE,
    }
    assert "read_orders" in DEFAULT_SCOPES
    assert "write_inventory" in DEFAULT_SCOPES
    assert "write_merchant_managed_fulfillment_orders" in DEFAULT_SCOPES


def test_the_scopes_and_the_base_url_can_be_overridden(
    sandbox: ShopifySandbox, base_url: str
) -> None:
    connector = make_connector(scopes="read_orders, write_inventory")
    try:
        url = urlsplit(connector.authorization_url(start_for(sandbox, base_url)))
    finally:
        connector.close()
    assert f"{url.scheme}://{url.netloc}" == base_url
    assert dict(parse_qsl(url.query))["scope"] == "read_orders,write_inventory"


@pytest.mark.parametrize(
    "hint",
    [
        None,
        "",
        "example.com",
        "https://example-shop.myshopify.com",
        "example-shop.myshopify.com.evil.example",
        "example-shop.myshopify.com/admin",
        "-bad.myshopify.com",
    ],
)
def test_the_authorization_url_refuses_anything_but_a_myshopify_domain(
    connector: ShopifyConnector, hint: str | None
) -> None:
    start = AuthorizationStart(state=STATE, redirect_uri=REDIRECT_URI, shop_hint=hint)
    with pytest.raises(InvalidInput, match="not a shop domain"):
        connector.authorization_url(start)


# --------------------------------------------------------------------------------------------
# The whole installation
# --------------------------------------------------------------------------------------------


def test_the_whole_installation_gives_a_working_token_the_shop_and_its_location(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    """Authorization URL -> the sandbox's 302 -> callback -> ``callback_state`` -> code
    exchange -> the shop (https://shopify.dev/docs/api/admin-graphql/latest/queries/shop) and
    its locations (https://shopify.dev/docs/api/admin-graphql/latest/queries/locations) read
    with the new token, which then serves a real call."""
    sandbox.add_product("Orbit tee", [{"sku": "TEE-S", "price": Decimal("19.99")}])
    start = start_for(sandbox, base_url)
    query = approve(connector.authorization_url(start))

    assert set(query) == CALLBACK_KEYS
    assert query["shop"] == sandbox.shop_domain
    assert query["state"] == STATE
    assert query["hmac"] == sign(query, CURRENT_SECRET)["hmac"]  # the documented scheme

    callback = AuthorizationCallback(query=query)
    assert connector.callback_state(callback) == STATE
    connected = connector.complete_authorization(callback, start)

    assert connected.external_id == sandbox.shop_domain
    assert connected.name == "Sandbox Shop"
    assert connected.currency == "EUR"
    assert connected.location_id == sandbox.location_id
    assert connected.api_base_url == base_url
    assert connected.scopes == DEFAULT_SCOPES
    token = connected.credentials["access_token"]
    assert token.startswith("shpat_")
    assert token != sandbox.access_token  # a token of its own, not the sandbox's fixed one
    assert connected.credentials["scope"] == ",".join(DEFAULT_SCOPES)
    assert token not in repr(connected)

    shop = ShopContext(
        shop_id=7,
        external_id=connected.external_id,
        credentials=connected.credentials,
        api_base_url=connected.api_base_url,
    )
    assert [variant.sku for variant in connector.list_listings(shop).variants] == ["TEE-S"]


def test_a_form_encoded_exchange_works_too_and_codes_are_single_use(
    sandbox: ShopifySandbox, base_url: str
) -> None:
    """The token endpoint takes JSON or a form; a used code is refused with a 400 and
    ``{"error", "error_description"}``."""
    query = approve(
        f"{base_url}/admin/oauth/authorize?client_id={CLIENT_ID}&scope=read_orders"
        f"&redirect_uri={REDIRECT_URI}&state={STATE}"
    )
    form = {"client_id": CLIENT_ID, "client_secret": CURRENT_SECRET, "code": query["code"]}
    with httpx.Client(base_url=base_url, timeout=5.0) as http:
        first = http.post("/admin/oauth/access_token", data=form)
        again = http.post("/admin/oauth/access_token", data=form)
    assert first.status_code == 200, first.text
    assert first.json()["scope"] == "read_orders"
    assert first.json()["access_token"].startswith("shpat_")
    assert again.status_code == 400
    assert set(again.json()) == {"error", "error_description"}


def test_the_token_endpoint_refuses_a_wrong_client_secret(
    sandbox: ShopifySandbox, base_url: str
) -> None:
    query = approve(
        f"{base_url}/admin/oauth/authorize?client_id={CLIENT_ID}&scope=read_orders"
        f"&redirect_uri={REDIRECT_URI}&state={STATE}"
    )
    wrong = {"client_id": CLIENT_ID, "client_secret": "not-it", "code": query["code"]}
    with httpx.Client(base_url=base_url, timeout=5.0) as http:
        response = http.post("/admin/oauth/access_token", json=wrong)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_the_consent_page_refuses_an_unknown_client_id(base_url: str) -> None:
    with httpx.Client(follow_redirects=False, timeout=5.0) as browser:
        response = browser.get(
            f"{base_url}/admin/oauth/authorize?client_id=someone-else&scope=read_orders"
            f"&redirect_uri={REDIRECT_URI}&state={STATE}"
        )
    assert response.status_code == 400


# --------------------------------------------------------------------------------------------
# Callbacks that do not prove themselves
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "0123456789abcdef0123456789abcdef"),  # the signed code swapped for another
        ("state", "someone-elses-state"),
        ("shop", "attacker.myshopify.com"),
        ("hmac", "00" * 32),
    ],
)
def test_a_tampered_callback_is_rejected(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str, field: str, value: str
) -> None:
    query = approve(connector.authorization_url(start_for(sandbox, base_url)))
    callback = AuthorizationCallback(query={**query, field: value})
    with pytest.raises(AuthorizationRejected, match="hmac does not match"):
        connector.callback_state(callback)


@pytest.mark.parametrize("missing", sorted(CALLBACK_KEYS - {"host", "timestamp"}))
def test_a_callback_missing_a_required_parameter_is_rejected(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str, missing: str
) -> None:
    query = approve(connector.authorization_url(start_for(sandbox, base_url)))
    query.pop(missing)
    with pytest.raises(AuthorizationRejected, match=missing):
        connector.callback_state(AuthorizationCallback(query=query))


def test_a_callback_signed_with_another_secret_is_rejected_and_the_previous_one_accepted(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    """The callback is signed with the app's client secret; during a rotation the previous
    secret still signs (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries says
    the same of webhooks), so both verify and nothing else does."""
    query = approve(connector.authorization_url(start_for(sandbox, base_url)))
    forged = AuthorizationCallback(query=sign(query, "shpss_someone_elses_secret"))
    with pytest.raises(AuthorizationRejected):
        connector.callback_state(forged)
    rotated = AuthorizationCallback(query=sign(query, PREVIOUS_SECRET))
    assert connector.callback_state(rotated) == STATE


def test_a_signed_callback_for_a_domain_that_is_not_myshopify_is_rejected(
    connector: ShopifyConnector,
) -> None:
    query = sign(
        {"code": "abc", "shop": "evil.example", "state": STATE, "timestamp": "1700000000"},
        CURRENT_SECRET,
    )
    with pytest.raises(AuthorizationRejected, match="not a myshopify domain"):
        connector.callback_state(AuthorizationCallback(query=query))


def test_a_declined_installation_is_rejected(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    sandbox.deny_next_install = True
    query = approve(connector.authorization_url(start_for(sandbox, base_url)))
    assert query["error"] == "access_denied"
    assert "code" not in query
    with pytest.raises(AuthorizationRejected, match="access_denied"):
        connector.callback_state(AuthorizationCallback(query=query))
    # The switch is spent: the next owner's approval goes through.
    assert "code" in approve(connector.authorization_url(start_for(sandbox, base_url)))


def test_a_replayed_callback_is_rejected_on_the_second_exchange(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    """Codes are single-use: the same (validly signed) callback twice exchanges once."""
    start = start_for(sandbox, base_url)
    callback = AuthorizationCallback(query=approve(connector.authorization_url(start)))
    connector.complete_authorization(callback, start)
    with pytest.raises(AuthorizationRejected, match="was refused") as refused:
        connector.complete_authorization(callback, start)
    assert refused.value.status == 400


def test_an_expired_code_is_rejected(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str, clock: FakeClock
) -> None:
    start = start_for(sandbox, base_url)
    callback = AuthorizationCallback(query=approve(connector.authorization_url(start)))
    clock.now += sandbox.oauth_code_ttl_seconds + 1
    with pytest.raises(AuthorizationRejected):
        connector.complete_authorization(callback, start)


def test_a_callback_for_another_shop_than_the_one_started_is_rejected_before_the_exchange(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    start = start_for(sandbox, base_url)
    callback = AuthorizationCallback(query=approve(connector.authorization_url(start)))
    elsewhere = replace(start, shop_hint="another-shop.myshopify.com")
    with pytest.raises(AuthorizationRejected, match="not the shop"):
        connector.complete_authorization(callback, elsewhere)
    # Nothing was exchanged: the code still works for the installation it belongs to.
    assert connector.complete_authorization(callback, start).external_id == sandbox.shop_domain


def test_a_callback_for_another_authorization_is_rejected(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str
) -> None:
    start = start_for(sandbox, base_url)
    callback = AuthorizationCallback(query=approve(connector.authorization_url(start)))
    with pytest.raises(AuthorizationRejected, match="state"):
        connector.complete_authorization(callback, replace(start, state="another-state"))


# --------------------------------------------------------------------------------------------
# Webhook subscriptions
# --------------------------------------------------------------------------------------------


@pytest.fixture
def shop(connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str) -> ShopContext:
    return install(connector, sandbox, base_url)[1]


def subscribe_all(connector: ShopifyConnector, shop: ShopContext) -> dict[str, str]:
    """Every topic the hub needs, each at its own address; topic -> subscription id."""
    created = {}
    for topic in connector.webhook_topics:
        address = f"{HOOKS}/{topic}"
        subscription = connector.create_webhook(shop, topic, address, secret="ignored")
        assert (subscription.topic, subscription.address) == (topic, address)
        assert subscription.active is True
        assert subscription.id.startswith("gid://shopify/WebhookSubscription/")
        created[topic] = subscription.id
    return created


def test_webhook_subscriptions_are_listed_created_and_refused_twice(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate,
    https://shopify.dev/docs/api/admin-graphql/latest/queries/webhookSubscriptions: topics are
    GraphQL enums (ORDERS_CREATE) on the wire and REST names (orders/create) in the hub."""
    assert connector.list_webhooks(shop) == []
    created = subscribe_all(connector, shop)

    listed = connector.list_webhooks(shop)
    assert {(s.topic, s.address, s.id) for s in listed} == {
        (topic, f"{HOOKS}/{topic}", created[topic]) for topic in connector.webhook_topics
    }
    assert {s["topic"] for s in sandbox.subscriptions()} == {
        "ORDERS_CREATE",
        "ORDERS_UPDATED",
        "APP_UNINSTALLED",
    }

    with pytest.raises(PermanentError, match="Address for this topic has already been taken"):
        connector.create_webhook(shop, "orders/create", f"{HOOKS}/orders/create", secret=None)
    assert len(connector.list_webhooks(shop)) == 3
    # The same topic at another address is a second subscription, as on Shopify.
    connector.create_webhook(shop, "orders/create", f"{HOOKS}/second", secret=None)
    assert len(connector.list_webhooks(shop)) == 4


def test_enabling_returns_the_subscription_unchanged(
    connector: ShopifyConnector, shop: ShopContext
) -> None:
    """Shopify has no disabled subscription (it deletes failing ones): enabling is a read."""
    created = connector.create_webhook(shop, "orders/updated", f"{HOOKS}/u", secret=None)
    assert connector.enable_webhook(shop, created.id) == created


def test_listing_pages_through_every_subscription(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    document = """
    mutation Create($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
      webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
        userErrors { message }
      }
    }"""
    for n in range(130):
        sandbox.refill_bucket()  # the test's clock stands still: refill by hand
        body = sandbox.execute_graphql(
            document, {"topic": "ORDERS_CREATE", "sub": {"uri": f"{HOOKS}/{n}"}}
        )
        assert body["data"]["webhookSubscriptionCreate"]["userErrors"] == [], body
    listed = connector.list_webhooks(shop)
    assert sorted(s.address for s in listed) == sorted(f"{HOOKS}/{n}" for n in range(130))


def test_deliveries_through_subscriptions_verify_with_the_connector(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    """Each subscription of the topic gets the event, signed with the app's client secret
    (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries); one event, one
    ``X-Shopify-Event-Id`` (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates)."""
    created = subscribe_all(connector, shop)
    second = connector.create_webhook(shop, "orders/create", f"{HOOKS}/second", secret=None)
    product = sandbox.add_product("Mug", [{"sku": "MUG", "price": Decimal("9.00")}])
    order_id = sandbox.add_order(
        [{"variant_id": product["variants"][0]["id"], "quantity": 1, "price": Decimal("9.00")}]
    )

    deliveries = sandbox.subscription_deliveries(
        "orders/create", sandbox.order_webhook_payload(order_id)
    )
    assert [(d.subscription_id, d.address) for d in deliveries] == [
        (created["orders/create"], f"{HOOKS}/orders/create"),
        (second.id, f"{HOOKS}/second"),
    ]
    envelopes = [connector.verify_webhook(d.body, d.headers) for d in deliveries]
    assert {e.topic for e in envelopes} == {"orders/create"}
    assert {e.shop_reference for e in envelopes} == {shop.external_id}
    assert {e.resource_id for e in envelopes} == {order_id}
    assert len({e.event_key for e in envelopes}) == 1  # the same event twice: dedupe


def test_a_subscription_whose_deliveries_keep_failing_is_deleted(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    """Shopify retries 8 times over 4 hours and deletes Admin-API subscriptions whose
    deliveries keep failing (https://shopify.dev/changelog/updates-to-webhook-retry-mechanism);
    a success in between starts the count again."""
    created = subscribe_all(connector, shop)
    doomed = created["orders/updated"]
    limit = sandbox.delivery_failure_limit
    assert limit == 8

    for _ in range(limit - 1):
        assert sandbox.record_delivery(doomed, 503) is True
    assert sandbox.record_delivery(doomed, 200) is True  # resets the count
    for _ in range(limit - 1):
        assert sandbox.record_delivery(doomed, 0) is True  # unreachable counts as a failure
    assert sandbox.record_delivery(doomed, 500) is False

    assert {s.topic for s in connector.list_webhooks(shop)} == {"orders/create", "app/uninstalled"}
    with pytest.raises(NotFound):
        connector.enable_webhook(shop, doomed)
    assert sandbox.subscription_deliveries("orders/updated", {"id": 1}) == []

    assert sandbox.drop_subscription(created["orders/create"]) is True
    assert sandbox.drop_subscription(created["orders/create"]) is False
    assert [s.topic for s in connector.list_webhooks(shop)] == ["app/uninstalled"]


def test_uninstalling_revokes_the_token_and_sends_a_verifiable_app_uninstalled(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    """After an uninstall the token is refused with 401 (an ``AuthError``: reconnect), and
    the ``app/uninstalled`` delivery names the shop
    (https://shopify.dev/docs/api/admin-graphql/latest/enums/WebhookSubscriptionTopic)."""
    subscribe_all(connector, shop)
    assert connector.list_listings(shop).variants == ()

    deliveries = sandbox.uninstall()

    assert [d.address for d in deliveries] == [f"{HOOKS}/app/uninstalled"]
    envelope = connector.verify_webhook(deliveries[0].body, deliveries[0].headers)
    assert envelope.topic == "app/uninstalled"
    assert envelope.shop_reference == shop.external_id
    assert envelope.resource_id == shop.external_id
    assert envelope.payload is not None
    assert envelope.payload["myshopify_domain"] == shop.external_id
    assert sandbox.subscriptions() == []

    with pytest.raises(AuthError) as refused:
        connector.list_listings(shop)
    assert refused.value.status == 401
    fixed = replace(shop, credentials={"access_token": sandbox.access_token})
    with pytest.raises(AuthError):
        connector.list_webhooks(fixed)


def test_reinstalling_after_an_uninstall_gives_a_new_working_token(
    connector: ShopifyConnector, sandbox: ShopifySandbox, base_url: str, shop: ShopContext
) -> None:
    sandbox.uninstall()
    connected, again = install(connector, sandbox, base_url)
    assert connected.credentials["access_token"] != shop.credentials["access_token"]
    assert connector.list_webhooks(again) == []
    with pytest.raises(AuthError):
        connector.list_webhooks(shop)
