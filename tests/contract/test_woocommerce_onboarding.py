"""Connecting a WooCommerce store and keeping its webhooks alive, against the sandbox.

The app authentication endpoint follows
https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys ("Auto generating API
keys using our Application Authentication Endpoint": ``/wc-auth/v1/authorize`` with
``app_name``, ``scope``, ``user_id``, ``return_url``, ``callback_url``; the keys POSTed as JSON
``{key_id, user_id, consumer_key, consumer_secret, key_permissions}``; the browser sent back
with ``success`` and ``user_id``) and ``WC_Auth`` in class-wc-auth.php (the callback must answer
exactly 200 or the keys are deleted and the admin sees "Error: …", HTTP 401).

Webhook management follows https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks
(the webhook object, #create-a-webhook, #list-all-webhooks, #retrieve-a-webhook,
#update-a-webhook, #delete-a-webhook) and ``WC_Webhook`` in class-wc-webhook.php (the unsigned
ping, success = 200-302, ``failure_count > 5`` disables).

Two servers run per module: the sandbox store, and a miniature hub that receives the keys,
the returning browser and the webhook deliveries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

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
    WebhookRejected,
)
from connectors.ratelimit import InProcessRateLimiter
from connectors.sandbox_server import serve_in_thread
from connectors.woocommerce.connector import WooCommerceConnector
from connectors.woocommerce.sandbox import WooCommerceSandbox
from connectors.woocommerce.webhooks import WebhookPing, secrets_from_mapping
from hub.domain.errors import InvalidInput

SITE = "atelier.woo.test"
STORE_NAME = "Atelier Nord &amp; Co"  # WordPress keeps the title HTML-escaped
FIXED_KEY = "ck_fixed_0123456789abcdef"
FIXED_SECRET = "cs_fixed_0123456789abcdef"
WEBHOOK_SECRET = "shop-7-webhook-secret"
STATE = "st_9f8e7d6c5b4a39281706"
WOO_KEY = re.compile(r"ck_[0-9a-f]{40}")
WOO_SECRET = re.compile(r"cs_[0-9a-f]{40}")
POSTED_FIELDS = {"key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions"}
WEBHOOK_FIELDS = {
    "id",
    "name",
    "status",
    "topic",
    "resource",
    "event",
    "hooks",
    "delivery_url",
    "date_created",
    "date_created_gmt",
    "date_modified",
    "date_modified_gmt",
    "_links",
}
PAGE_SIZE = 2  # small pages, so listing webhooks pages for real


# --------------------------------------------------------------------------------------------
# The two servers
# --------------------------------------------------------------------------------------------


class Mount:
    """One uvicorn for the module; each test mounts a fresh sandbox behind it."""

    def __init__(self) -> None:
        self.app: Any = Starlette()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class Posted:
    body: bytes
    headers: dict[str, str]


@dataclass
class HubDouble:
    """The hub's side in miniature: the callback WooCommerce POSTs the keys to, the page the
    seller's browser returns to, and the webhook delivery URL."""

    callback_status: int = 200
    webhook_status: int = 200
    on_callback: Callable[[AuthorizationCallback], int] | None = None
    callbacks: list[Posted] = field(default_factory=list)
    returns: list[dict[str, list[str]]] = field(default_factory=list)
    deliveries: list[Posted] = field(default_factory=list)

    def reset(self) -> None:
        self.callback_status, self.webhook_status, self.on_callback = 200, 200, None
        self.callbacks.clear()
        self.returns.clear()
        self.deliveries.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/woo/callback", self._callback, methods=["POST"]),
                Route("/woo/return", self._return, methods=["GET"]),
                Route("/webhooks/woocommerce", self._delivery, methods=["POST"]),
            ]
        )

    async def _callback(self, request: Request) -> Response:
        posted = Posted(await request.body(), dict(request.headers))
        self.callbacks.append(posted)
        status = self.callback_status
        if self.on_callback is not None:
            callback = AuthorizationCallback(
                query=dict(request.query_params),
                body=posted.body,
                content_type=request.headers.get("content-type", ""),
            )
            status = await run_in_threadpool(self.on_callback, callback)
        return Response(status_code=status)

    async def _return(self, request: Request) -> Response:
        self.returns.append(parse_qs(request.url.query))
        return PlainTextResponse("back in the hub")

    async def _delivery(self, request: Request) -> Response:
        self.deliveries.append(Posted(await request.body(), dict(request.headers)))
        return Response(status_code=self.webhook_status)


@pytest.fixture(scope="module")
def mount() -> Iterator[tuple[Mount, str]]:
    mounted = Mount()
    with serve_in_thread(mounted) as base_url:
        yield mounted, base_url


@pytest.fixture(scope="module")
def hub_server() -> Iterator[tuple[HubDouble, str]]:
    hub = HubDouble()
    with serve_in_thread(hub.app()) as base_url:
        yield hub, base_url


@pytest.fixture
def hub(hub_server: tuple[HubDouble, str]) -> HubDouble:
    hub_server[0].reset()
    return hub_server[0]


@pytest.fixture
def hub_url(hub_server: tuple[HubDouble, str]) -> str:
    return hub_server[1]


@pytest.fixture
def sandbox(mount: tuple[Mount, str]) -> WooCommerceSandbox:
    store = WooCommerceSandbox(
        site=SITE,
        consumer_key=FIXED_KEY,
        consumer_secret=FIXED_SECRET,
        store_name=STORE_NAME,
        currency="EUR",
    )
    mount[0].app = store.app
    return store


@pytest.fixture
def store_url(mount: tuple[Mount, str]) -> str:
    return mount[1]


@pytest.fixture
def connector() -> Iterator[WooCommerceConnector]:
    built = WooCommerceConnector(
        ConnectorConfig(http_timeout_seconds=3.0),
        rate_limiter=InProcessRateLimiter(max_inline_wait=1.0),
        webhook_secrets=secrets_from_mapping({SITE: WEBHOOK_SECRET}),
        requests_per_second=1_000,
        page_size=PAGE_SIZE,
    )
    yield built
    built.close()


def start_for(store_url: str, hub_url: str, state: str = STATE) -> AuthorizationStart:
    return AuthorizationStart(
        state=state,
        redirect_uri=f"{hub_url}/woo/callback",
        shop_hint=f"https://{SITE}/",
        api_base_url=store_url,
        return_url=f"{hub_url}/woo/return",
    )


def callback_of(posted: Posted) -> AuthorizationCallback:
    return AuthorizationCallback(
        query={}, body=posted.body, content_type=posted.headers.get("content-type", "")
    )


def shop_of(connected: ConnectedShop, shop_id: int = 7) -> ShopContext:
    return ShopContext(
        shop_id=shop_id,
        external_id=connected.external_id,
        credentials=connected.credentials,
        api_base_url=connected.api_base_url,
    )


def fixed_shop(store_url: str) -> ShopContext:
    return ShopContext(
        shop_id=7,
        external_id=SITE,
        credentials={"consumer_key": FIXED_KEY, "consumer_secret": FIXED_SECRET},
        api_base_url=store_url,
    )


def rest(store_url: str, key: str = FIXED_KEY, secret: str = FIXED_SECRET) -> httpx.Client:
    return httpx.Client(base_url=f"{store_url}/wp-json/wc/v3/", auth=(key, secret), timeout=5.0)


def an_order(sandbox: WooCommerceSandbox, when: datetime) -> int:
    product = sandbox.add_product("Tee", sku="TEE-M", price=Decimal("20.00"), stock=5)
    return sandbox.add_order(
        [{"product_id": product["id"], "quantity": 1}],
        date_created_gmt=when,
        date_modified_gmt=when,
    )


# --------------------------------------------------------------------------------------------
# The authorization URL
# --------------------------------------------------------------------------------------------


class TestAuthorizationUrl:
    """https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys: "You must use
    the /wc-auth/v1/authorize endpoint and pass the above parameters as a query string"
    (app_name, scope, user_id, return_url, callback_url, all mandatory and encoded)."""

    def test_the_store_is_asked_for_read_write_keys_under_our_state(
        self, connector: WooCommerceConnector
    ) -> None:
        start = AuthorizationStart(
            state="st/with+odd chars",
            redirect_uri="https://hub.example/connect/woocommerce/callback",
            shop_hint="Shop.Example.com/store/",
            return_url="https://hub.example/shops?connected=woocommerce",
        )
        url = urlsplit(connector.authorization_url(start))
        assert (url.scheme, url.netloc, url.path) == (
            "https",
            "Shop.Example.com",
            "/store/wc-auth/v1/authorize",
        )
        assert parse_qs(url.query) == {
            "app_name": ["marketplace-hub"],
            "scope": ["read_write"],
            "user_id": ["st/with+odd chars"],
            "return_url": ["https://hub.example/shops?connected=woocommerce"],
            "callback_url": ["https://hub.example/connect/woocommerce/callback"],
        }

    def test_a_sandbox_serves_the_page_and_the_app_name_is_configurable(self) -> None:
        named = WooCommerceConnector(ConnectorConfig(app_credentials={"app_name": "Print Hub"}))
        start = AuthorizationStart(
            state="s",
            redirect_uri="http://127.0.0.1:9/cb",
            shop_hint="https://shop.example.com",
            api_base_url="http://127.0.0.1:8123/",
            return_url="http://127.0.0.1:9/back",
        )
        url = urlsplit(named.authorization_url(start))
        assert f"{url.scheme}://{url.netloc}{url.path}" == (
            "http://127.0.0.1:8123/wc-auth/v1/authorize"
        )
        assert parse_qs(url.query)["app_name"] == ["Print Hub"]
        named.close()

    @pytest.mark.parametrize(
        ("shop_hint", "return_url"),
        [(None, "https://hub.example/back"), ("  ", "https://hub.example/back"), ("s.test", None)],
    )
    def test_the_store_url_and_a_return_url_are_required(
        self, connector: WooCommerceConnector, shop_hint: str | None, return_url: str | None
    ) -> None:
        start = AuthorizationStart(
            state="s",
            redirect_uri="https://hub.example/cb",
            shop_hint=shop_hint,
            return_url=return_url,
        )
        with pytest.raises(InvalidInput):
            connector.authorization_url(start)


# --------------------------------------------------------------------------------------------
# The flow through the sandbox's /wc-auth/v1/authorize
# --------------------------------------------------------------------------------------------


class TestAuthorizationFlow:
    def test_the_whole_flow_gives_keys_that_work(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys: the keys
        arrive in a separate POST to callback_url; the browser returns with success=1 and
        user_id."""
        start = start_for(store_url, hub_url)
        with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
            landed = browser.get(connector.authorization_url(start))
        assert landed.status_code == 200
        assert [r.status_code for r in landed.history] == [302]
        assert hub.returns == [{"success": ["1"], "user_id": [STATE]}]

        assert len(hub.callbacks) == 1
        posted = hub.callbacks[0]
        assert posted.headers["content-type"].startswith("application/json")
        document = json.loads(posted.body)
        assert set(document) == POSTED_FIELDS
        assert document["user_id"] == STATE
        assert document["key_permissions"] == "read_write"
        assert WOO_KEY.fullmatch(document["consumer_key"])
        assert WOO_SECRET.fullmatch(document["consumer_secret"])

        callback = callback_of(posted)
        assert connector.callback_state(callback) == STATE
        connected = connector.complete_authorization(callback, start)
        assert connected.external_id == SITE
        assert connected.name == "Atelier Nord & Co"
        assert connected.currency == "EUR"
        assert connected.scopes == ("read_write",)
        assert connected.api_base_url == store_url
        assert dict(connected.credentials) == {
            "consumer_key": document["consumer_key"],
            "consumer_secret": document["consumer_secret"],
        }
        assert document["consumer_secret"] not in repr(connected)
        assert [key["key_id"] for key in sandbox.api_keys()] == [document["key_id"]]
        assert sandbox.api_keys()[0]["description"].startswith("marketplace-hub - API (")

        since = datetime(2026, 9, 1, tzinfo=UTC)
        order_id = an_order(sandbox, since + timedelta(hours=1))
        page = connector.list_orders_changed(shop_of(connected), since=since)
        assert [order.external_id for order in page.orders] == [str(order_id)]

        # the call really used the new keys: without them the same call is refused
        assert sandbox.revoke_api_key(document["consumer_key"])
        with pytest.raises(AuthError):
            connector.list_orders_changed(shop_of(connected), since=since)

    def test_the_hub_can_complete_while_woocommerce_waits_on_the_callback(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """The keys are live before WooCommerce POSTs them (``WC_Auth::create_keys`` runs
        first), so the hub may prove them inside the callback and answer 200 only then."""
        start = start_for(store_url, hub_url)
        connected: list[ConnectedShop] = []

        def complete(callback: AuthorizationCallback) -> int:
            assert connector.callback_state(callback) == start.state
            connected.append(connector.complete_authorization(callback, start))
            return 200

        hub.on_callback = complete
        with httpx.Client(follow_redirects=False, timeout=10.0) as browser:
            answer = browser.get(connector.authorization_url(start))
        assert answer.status_code == 302
        assert parse_qs(urlsplit(answer.headers["location"]).query)["success"] == ["1"]
        assert [shop.currency for shop in connected] == ["EUR"]
        assert sandbox.authorizations[-1]["outcome"] == "granted"

    def test_a_denied_authorization_posts_nothing(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """ "success sends 0 if the user denied" (#rest-api-keys, Notes)."""
        sandbox.deny_next_authorization = True
        start = start_for(store_url, hub_url)
        with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
            landed = browser.get(connector.authorization_url(start))
        assert landed.status_code == 200
        assert hub.returns == [{"success": ["0"], "user_id": [STATE]}]
        assert hub.callbacks == []
        assert sandbox.api_keys() == []
        assert not sandbox.deny_next_authorization  # one refusal, then the admin approves

    @pytest.mark.parametrize("callback_status", [500, 201])
    def test_a_failed_callback_deletes_the_keys_it_posted(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
        callback_status: int,
    ) -> None:
        """``WC_Auth::post_consumer_data`` wants exactly 200; otherwise ``maybe_delete_key``
        removes the keys and ``wp_die`` shows the error (401), no redirect."""
        hub.callback_status = callback_status
        start = start_for(store_url, hub_url)
        with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
            page = browser.get(connector.authorization_url(start))
        assert page.status_code == 401
        assert "unable to send the consumer data" in page.text
        assert hub.returns == []
        assert sandbox.api_keys() == []
        callback = callback_of(hub.callbacks[0])
        assert connector.callback_state(callback) == STATE  # well formed, but dead keys
        with pytest.raises(AuthorizationRejected) as rejected:
            connector.complete_authorization(callback, start)
        assert rejected.value.status == 401

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"scope": "admin"}, "Error: Invalid scope admin."),
            ({"callback_url": None}, "Error: Missing parameter callback_url."),
            ({"return_url": "https://"}, "is not a valid URL"),
        ],
    )
    def test_a_bad_request_gets_woocommerces_error_page(
        self,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
        change: dict[str, str | None],
        message: str,
    ) -> None:
        """``WC_Auth::make_validation`` throws; ``auth_endpoint`` answers with ``wp_die``."""
        params: dict[str, str | None] = {
            "app_name": "marketplace-hub",
            "scope": "read_write",
            "user_id": STATE,
            "return_url": f"{hub_url}/woo/return",
            "callback_url": f"{hub_url}/woo/callback",
            **change,
        }
        query = {name: value for name, value in params.items() if value is not None}
        page = httpx.get(f"{store_url}/wc-auth/v1/authorize", params=query, timeout=5.0)
        assert page.status_code == 401
        assert message in page.text
        assert (hub.callbacks, hub.returns, sandbox.api_keys()) == ([], [], [])

    def test_woocommerce_wants_the_callback_over_https(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """ "Note: this URL should be over HTTPS" (#rest-api-keys); WC_Auth enforces it. The
        sandbox does only behind a switch, as loopback tests serve plain HTTP."""
        sandbox.require_https_callback = True
        page = httpx.get(connector.authorization_url(start_for(store_url, hub_url)), timeout=5.0)
        assert page.status_code == 401
        assert "The callback_url needs to be over SSL" in page.text
        assert hub.callbacks == []


# --------------------------------------------------------------------------------------------
# What the callback must prove before anything is stored
# --------------------------------------------------------------------------------------------


def keys_body(**fields: Any) -> bytes:
    document = {
        "key_id": 12,
        "user_id": STATE,
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
        "key_permissions": "read_write",
        **fields,
    }
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


class TestCallbackChecks:
    """The POSTed JSON of https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys
    ("Example of JSON posted with the API Keys"); no I/O before it proves itself."""

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"not json",
            b"\xff\xfe\x00",
            b"[]",
            b'{"user_id": "st_1", "key_id": 3}',
            keys_body(consumer_key=None),
            keys_body(consumer_secret=None),
            keys_body(consumer_key="abc", consumer_secret="def"),
            keys_body(consumer_key="cs_" + "a" * 40),  # the secret's prefix in the key's place
            keys_body(user_id=None),
            keys_body(user_id=""),
            keys_body(user_id=True),
            keys_body(key_permissions=["read"]),
        ],
    )
    def test_a_body_without_woocommerce_keys_is_rejected(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, body: bytes
    ) -> None:
        callback = AuthorizationCallback(query={}, body=body, content_type="application/json")
        with pytest.raises(AuthorizationRejected):
            connector.callback_state(callback)
        assert sandbox.requests == 0

    def test_a_numeric_user_id_is_the_state_as_text(self, connector: WooCommerceConnector) -> None:
        """The documentation's example posts ``"user_id": 123``."""
        callback = AuthorizationCallback(query={}, body=keys_body(user_id=123))
        assert connector.callback_state(callback) == "123"

    @pytest.mark.parametrize(
        "body",
        [keys_body(user_id="st_someone_else"), keys_body(key_permissions="read")],
        ids=["another state", "read-only keys"],
    )
    def test_keys_that_do_not_match_the_start_are_rejected_without_a_call(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub_url: str,
        body: bytes,
    ) -> None:
        callback = AuthorizationCallback(query={}, body=body)
        with pytest.raises(AuthorizationRejected):
            connector.complete_authorization(callback, start_for(store_url, hub_url))
        assert sandbox.requests == 0

    def test_keys_the_store_does_not_know_are_rejected(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub_url: str,
    ) -> None:
        callback = AuthorizationCallback(query={}, body=keys_body())
        with pytest.raises(AuthorizationRejected) as rejected:
            connector.complete_authorization(callback, start_for(store_url, hub_url))
        assert rejected.value.status == 401
        assert "b" * 40 not in str(rejected.value)  # the secret is never echoed


# --------------------------------------------------------------------------------------------
# Keys a seller pastes
# --------------------------------------------------------------------------------------------


class TestPastedKeys:
    """Keys made under WooCommerce > Settings > Advanced > REST API
    (https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys), checked over
    HTTP Basic (#authentication-over-https)."""

    def test_read_write_keys_connect_the_store(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, store_url: str
    ) -> None:
        key = sandbox.add_api_key("read_write")
        connected = connector.connect_with_keys(
            "HTTPS://Atelier.Woo.Test/",
            key["consumer_key"],
            key["consumer_secret"],
            api_base_url=store_url,
        )
        assert (connected.external_id, connected.name, connected.currency) == (
            SITE,
            "Atelier Nord & Co",
            "EUR",
        )
        assert connected.scopes == ("read_write",)
        since = datetime(2026, 9, 1, tzinfo=UTC)
        order_id = an_order(sandbox, since + timedelta(minutes=5))
        page = connector.list_orders_changed(shop_of(connected), since=since)
        assert [order.external_id for order in page.orders] == [str(order_id)]

    def test_wrong_revoked_or_read_only_keys_are_rejected(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, store_url: str
    ) -> None:
        good = sandbox.add_api_key("read_write")
        revoked = sandbox.add_api_key("read_write")
        sandbox.revoke_api_key(revoked["consumer_key"])
        read_only = sandbox.add_api_key("read")
        write_only = sandbox.add_api_key("write")
        attempts = {
            "wrong secret": (good["consumer_key"], "cs_" + "0" * 40),
            "revoked": (revoked["consumer_key"], revoked["consumer_secret"]),
            "read only": (read_only["consumer_key"], read_only["consumer_secret"]),
            "write only": (write_only["consumer_key"], write_only["consumer_secret"]),
        }
        reasons = {}
        for name, (key, secret) in attempts.items():
            with pytest.raises(AuthorizationRejected) as rejected:
                connector.connect_with_keys(SITE, key, secret, api_base_url=store_url)
            assert secret not in str(rejected.value)
            reasons[name] = str(rejected.value)
        assert "Consumer secret is invalid" in reasons["wrong secret"]
        assert "Consumer key is invalid" in reasons["revoked"]
        assert "does not have write permissions" in reasons["read only"]
        assert "does not have read permissions" in reasons["write only"]

    def test_malformed_keys_are_rejected_without_a_call(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, store_url: str
    ) -> None:
        for key, secret in [("", ""), ("ck_x", "cs_y"), ("my key", "my secret")]:
            with pytest.raises(AuthorizationRejected):
                connector.connect_with_keys(SITE, key, secret, api_base_url=store_url)
        assert sandbox.requests == 0

    def test_a_site_that_is_not_woocommerce_is_not_an_authorization_problem(
        self, connector: WooCommerceConnector, hub_url: str
    ) -> None:
        """A 404 (no ``wc/v3`` route) is a permanent error for the seller to read, not a
        rejected authorization."""
        with pytest.raises(PermanentError) as failed:
            connector.connect_with_keys(
                SITE, "ck_" + "1" * 40, "cs_" + "2" * 40, api_base_url=hub_url
            )
        assert not isinstance(failed.value, AuthorizationRejected)


# --------------------------------------------------------------------------------------------
# Webhook subscriptions
# --------------------------------------------------------------------------------------------


def is_ping(posted: Posted) -> bool:
    return posted.body.startswith(b"webhook_id=")


class TestWebhookSubscriptions:
    def test_the_connector_is_both_registries(self, connector: WooCommerceConnector) -> None:
        assert isinstance(connector, ShopAuthorization)
        assert isinstance(connector, WebhookRegistry)
        assert connector.webhook_topics == ("order.created", "order.updated")

    def test_creating_the_topics_pings_each_delivery_url(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """#create-a-webhook; the ping of ``WC_Webhook::deliver_ping``: form body
        ``webhook_id=<id>``, no signature (reference §3.7)."""
        shop = fixed_shop(store_url)
        address = f"{hub_url}/webhooks/woocommerce"
        created = [
            connector.create_webhook(shop, topic, address, secret=WEBHOOK_SECRET)
            for topic in connector.webhook_topics
        ]
        assert [(s.topic, s.address, s.active) for s in created] == [
            ("order.created", address, True),
            ("order.updated", address, True),
        ]
        assert [p.body for p in hub.deliveries] == [f"webhook_id={s.id}".encode() for s in created]
        for posted, subscription in zip(hub.deliveries, created, strict=True):
            assert "x-wc-webhook-signature" not in posted.headers
            with pytest.raises(WebhookPing) as ping:
                connector.verify_webhook(posted.body, posted.headers)
            assert ping.value.webhook_id == subscription.id
        stored = sandbox.webhooks()
        assert [(w["name"], w["secret"], w["pending_delivery"]) for w in stored] == [
            ("marketplace-hub order.created", WEBHOOK_SECRET, False),
            ("marketplace-hub order.updated", WEBHOOK_SECRET, False),
        ]
        assert sorted(connector.list_webhooks(shop), key=lambda s: s.id) == created

    def test_the_rest_api_speaks_the_documented_webhook_object(
        self, sandbox: WooCommerceSandbox, store_url: str, hub: HubDouble, hub_url: str
    ) -> None:
        """#webhook-properties (``secret`` is write-only), #create-a-webhook (201),
        #retrieve-a-webhook, #update-a-webhook, #list-all-webhooks (``status``, paging),
        #delete-a-webhook (``force``)."""
        address = f"{hub_url}/webhooks/woocommerce"
        with rest(store_url) as api:
            created = api.post(
                "webhooks",
                json={"name": "Order updated", "topic": "order.updated", "delivery_url": address},
            )
            assert created.status_code == 201
            hook = created.json()
            assert set(hook) == WEBHOOK_FIELDS
            assert created.headers["location"].endswith(f"/wp-json/wc/v3/webhooks/{hook['id']}")
            assert (hook["status"], hook["resource"], hook["event"]) == (
                "active",
                "order",
                "updated",
            )
            assert "woocommerce_update_order" in hook["hooks"]
            assert hook["_links"]["self"][0]["href"].endswith(f"/webhooks/{hook['id']}")
            assert len(sandbox.webhooks()[0]["secret"]) >= 32  # WooCommerce made one up

            for _ in range(3):
                api.post(
                    "webhooks",
                    json={"topic": "order.created", "delivery_url": address, "status": "paused"},
                ).raise_for_status()
            assert sandbox.webhooks()[-1]["name"].startswith("Webhook created on ")

            paused = api.get("webhooks", params={"status": "paused", "per_page": 2})
            assert paused.headers["x-wp-total"] == "3"
            assert paused.headers["x-wp-totalpages"] == "2"
            assert 'rel="next"' in paused.headers["link"]
            assert [w["status"] for w in paused.json()] == ["paused", "paused"]

            updated = api.put(f"webhooks/{hook['id']}", json={"status": "paused"})
            assert updated.json()["status"] == "paused"
            assert api.get(f"webhooks/{hook['id']}").json()["status"] == "paused"
            assert api.get("webhooks/9999").json()["code"] == "woocommerce_rest_webhook_invalid_id"

            bad_topic = api.post("webhooks", json={"topic": "order.eaten", "delivery_url": address})
            assert bad_topic.status_code == 400
            assert bad_topic.json()["code"] == "woocommerce_rest_webhook_invalid_topic"

            assert api.delete(f"webhooks/{hook['id']}").status_code == 501  # no trash
            assert api.delete(f"webhooks/{hook['id']}", params={"force": "true"}).is_success
            assert api.get("webhooks").headers["x-wp-total"] == "3"

    def test_list_webhooks_pages_through_every_webhook(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub_url: str,
    ) -> None:
        shop = fixed_shop(store_url)
        address = f"{hub_url}/webhooks/woocommerce"
        created = [
            connector.create_webhook(shop, topic, address, secret=WEBHOOK_SECRET)
            for topic in ("order.created", "order.updated", "product.updated") * 2
        ]
        before = len(sandbox.request_log)
        assert connector.list_webhooks(shop) == created
        listing_calls = [entry for entry in sandbox.request_log[before:] if entry[0] == "GET"]
        assert len(listing_calls) == 3  # six webhooks, two a page

    def test_deliveries_verify_with_the_webhooks_own_secret(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """Each delivery is signed with its webhook's secret (``X-WC-Webhook-Signature``,
        #webhooks "Delivery/payload"); paused webhooks deliver nothing."""
        shop = fixed_shop(store_url)
        address = f"{hub_url}/webhooks/woocommerce"
        ours = {
            topic: connector.create_webhook(shop, topic, address, secret=WEBHOOK_SECRET)
            for topic in connector.webhook_topics
        }
        foreign = connector.create_webhook(shop, "order.created", address, secret="not-ours")
        with rest(store_url) as api:
            api.put(f"webhooks/{foreign.id}", json={"status": "paused"}).raise_for_status()
            stranger = api.post(
                "webhooks",
                json={"topic": "order.created", "delivery_url": address, "secret": "x" * 20},
            ).json()
        order_id = an_order(sandbox, datetime(2026, 9, 2, 8, 30, tzinfo=UTC))
        deliveries = sandbox.signed_deliveries("order.created", sandbox.order_json(order_id))
        assert [d.webhook_id for d in deliveries] == [int(ours["order.created"].id), stranger["id"]]

        envelope = connector.verify_webhook(deliveries[0].body, deliveries[0].headers)
        assert (envelope.topic, envelope.resource_id, envelope.shop_reference) == (
            "order.created",
            str(order_id),
            SITE,
        )
        assert deliveries[0].headers["X-WC-Webhook-ID"] == ours["order.created"].id
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(deliveries[1].body, deliveries[1].headers)

        hub.deliveries.clear()
        outcomes = sandbox.deliver("order.updated", sandbox.order_json(order_id))
        assert outcomes == [(int(ours["order.updated"].id), 200)]
        received = hub.deliveries[-1]
        assert connector.verify_webhook(received.body, received.headers).topic == "order.updated"

    def test_the_seventh_failed_delivery_in_a_row_disables_the_webhook_and_enable_revives_it(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub: HubDouble,
        hub_url: str,
    ) -> None:
        """``WC_Webhook::failed_delivery``: a failure with ``failure_count > 5`` disables, else
        the count goes up; so six failures leave it active at 6, the seventh disables it
        (reference §3.7). #update-a-webhook with ``status: active`` re-enables it; the count
        is kept until a success resets it."""
        shop = fixed_shop(store_url)
        address = f"{hub_url}/webhooks/woocommerce"
        created = connector.create_webhook(shop, "order.created", address, secret=WEBHOOK_SECRET)
        updated = connector.create_webhook(shop, "order.updated", address, secret=WEBHOOK_SECRET)
        payload = sandbox.order_json(an_order(sandbox, datetime(2026, 9, 3, tzinfo=UTC)))
        hub.webhook_status = 500
        hook_id = int(created.id)

        for _ in range(6):
            assert sandbox.deliver("order.created", payload) == [(hook_id, 500)]
        assert sandbox.webhooks()[0]["failure_count"] == 6
        assert all(s.active for s in connector.list_webhooks(shop))

        assert sandbox.deliver("order.created", payload) == [(hook_id, 500)]
        states = {s.id: s.active for s in connector.list_webhooks(shop)}
        assert states == {created.id: False, updated.id: True}
        posts = len(hub.deliveries)
        assert sandbox.deliver("order.created", payload) == []  # disabled: nothing is sent
        assert len(hub.deliveries) == posts

        revived = connector.enable_webhook(shop, created.id)
        assert (revived.id, revived.topic, revived.active) == (created.id, "order.created", True)
        assert [w["status"] for w in sandbox.webhooks()] == ["active", "active"]
        assert sandbox.webhooks()[0]["failure_count"] == 6
        hub.webhook_status = 200
        assert sandbox.deliver("order.created", payload) == [(hook_id, 200)]
        assert sandbox.webhooks()[0]["failure_count"] == 0

    def test_what_counts_as_a_successful_delivery(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, store_url: str
    ) -> None:
        """ "a 2xx, 301 or 302 Response Code" (``WC_Webhook::log_delivery``)."""
        shop = fixed_shop(store_url)
        hook = connector.create_webhook(
            shop, "order.created", f"{store_url}/nowhere", secret=WEBHOOK_SECRET
        )
        webhook_id = int(hook.id)
        assert sandbox.webhooks()[0]["pending_delivery"]  # the ping got a 404
        for status in (303, None, 404):
            sandbox.record_delivery(webhook_id, status)
        assert sandbox.webhooks()[0]["failure_count"] == 3
        sandbox.record_delivery(webhook_id, 302)
        assert sandbox.webhooks()[0]["failure_count"] == 0
        with pytest.raises(KeyError):
            sandbox.record_delivery(webhook_id + 100, 200)

    def test_enable_pings_a_webhook_whose_ping_never_succeeded(
        self,
        connector: WooCommerceConnector,
        sandbox: WooCommerceSandbox,
        store_url: str,
        hub_url: str,
    ) -> None:
        """The data store's ``update`` pings an active webhook still ``pending_delivery``."""
        shop = fixed_shop(store_url)
        hook = connector.create_webhook(
            shop, "order.updated", f"{hub_url}/nowhere", secret=WEBHOOK_SECRET
        )
        with rest(store_url) as api:
            api.put(
                f"webhooks/{hook.id}", json={"delivery_url": f"{hub_url}/webhooks/woocommerce"}
            ).raise_for_status()
        connector.enable_webhook(shop, hook.id)
        assert [status for _, status in sandbox.ping_log] == [404, 200]
        assert not sandbox.webhooks()[0]["pending_delivery"]

    def test_errors(
        self, connector: WooCommerceConnector, sandbox: WooCommerceSandbox, store_url: str
    ) -> None:
        shop = fixed_shop(store_url)
        for unknown in ("9999", "abc", "0"):
            with pytest.raises(NotFound):
                connector.enable_webhook(shop, unknown)
        with pytest.raises(PermanentError) as bad_topic:
            connector.create_webhook(shop, "order.eaten", "https://hub.example/w", secret="s")
        assert "woocommerce_rest_webhook_invalid_topic" in str(bad_topic.value)
        with pytest.raises(PermanentError, match="no webhook secret"):
            connector.create_webhook(shop, "order.created", "https://hub.example/w", secret=None)
        read_only = sandbox.add_api_key("read")
        reader = ShopContext(
            shop_id=7,
            external_id=SITE,
            credentials={
                "consumer_key": read_only["consumer_key"],
                "consumer_secret": read_only["consumer_secret"],
            },
            api_base_url=store_url,
        )
        assert connector.list_webhooks(reader) == []
        with pytest.raises(AuthError):
            connector.create_webhook(reader, "order.created", "https://hub.example/w", secret="s")
        assert sandbox.webhooks() == []
