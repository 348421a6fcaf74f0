"""Etsy shop onboarding: OAuth 2 authorization code with PKCE, through the connector and the
sandbox.

Shapes follow Etsy's documentation:
- https://developers.etsy.com/documentation/essentials/authentication: the consent page
  ``https://www.etsy.com/oauth/connect`` (``response_type=code``, ``client_id`` = keystring,
  ``redirect_uri``, ``scope`` URL-encoded and space-separated, ``state``, ``code_challenge``,
  ``code_challenge_method=S256``), the redirect back with ``code`` and ``state`` (or an
  error), the token request ``POST https://api.etsy.com/v3/public/oauth/token`` with
  ``grant_type=authorization_code``, ``client_id``, ``redirect_uri``, ``code`` and
  ``code_verifier``, and its answer ``{access_token: "<user_id>.<...>", token_type: "Bearer",
  expires_in: 3600, refresh_token}``;
- https://developers.etsy.com/documentation/reference#operation/getMe (``Self {user_id,
  shop_id}``, security ``shops_r``) and
  https://developers.etsy.com/documentation/reference#operation/getShop (``Shop``);
- RFC 7636 (PKCE): S256 is base64url(SHA-256(verifier)) without padding, Appendix B vector.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from connectors.contract import (
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    ConnectedShop,
    InMemoryCredentialStore,
    ShopAuthorization,
    ShopContext,
)
from connectors.etsy.connector import EtsyConnector
from connectors.etsy.sandbox import EtsySandbox, SandboxShop
from connectors.sandbox_server import serve_in_thread
from tests.contract.etsy_double import (
    FAST_PER_DAY,
    FAST_PER_SECOND,
    KEYSTRING,
    SHARED_SECRET,
    make_connector,
)

REDIRECT_URI = "https://hub.example/oauth/etsy/callback"
WANTED_SCOPES = frozenset(
    {"transactions_r", "transactions_w", "listings_r", "listings_w", "shops_r"}
)
# RFC 7636 Appendix B: the verifier and its S256 challenge.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
API_KEY = {"x-api-key": f"{KEYSTRING}:{SHARED_SECRET}"}


@dataclass
class World:
    sandbox: EtsySandbox
    base_url: str
    first: SandboxShop  # added first: the default signed-in seller
    seller: SandboxShop  # the seller the tests sign in
    connector: EtsyConnector

    def start(self, **changes: Any) -> AuthorizationStart:
        start = AuthorizationStart(
            state=secrets.token_urlsafe(24),
            redirect_uri=REDIRECT_URI,
            code_verifier=secrets.token_urlsafe(48),
            api_base_url=self.base_url,
        )
        return replace(start, **changes)

    def consent(self, url: str) -> AuthorizationCallback:
        """The seller's browser at the consent page: follow the sandbox's 302 no further than
        its Location, which is our callback."""
        answer = httpx.get(url, follow_redirects=False, timeout=5.0)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        return AuthorizationCallback(query=dict(parse_qsl(urlsplit(location).query)))

    def connect(self, start: AuthorizationStart) -> tuple[AuthorizationCallback, ConnectedShop]:
        callback = self.consent(self.connector.authorization_url(start))
        assert self.connector.callback_state(callback) == start.state
        return callback, self.connector.complete_authorization(callback, start)


@pytest.fixture
def world() -> Iterator[World]:
    sandbox = EtsySandbox(
        keystring=KEYSTRING,
        shared_secret=SHARED_SECRET,
        requests_per_second=FAST_PER_SECOND,
        requests_per_day=FAST_PER_DAY,
    )
    first = sandbox.add_shop(shop_name="FirstPrints")
    seller = sandbox.add_shop(shop_name="OnboardingPrints", currency="EUR")
    sandbox.sign_in(seller.shop_id)
    connector = make_connector()
    with serve_in_thread(sandbox.app) as base_url:
        yield World(sandbox, base_url, first, seller, connector)
    connector.close()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------------------------
# The connector: the whole flow and what must be refused
# --------------------------------------------------------------------------------------------


class TestOnboardingThroughTheConnector:
    def test_the_connector_is_a_shop_authorization(self, world: World) -> None:
        assert isinstance(world.connector, ShopAuthorization)

    def test_the_whole_flow_connects_the_signed_in_sellers_shop(self, world: World) -> None:
        """URL -> consent (302 to our callback) -> callback_state -> complete_authorization;
        the credentials read receipts and listings, and refresh afterwards."""
        before = datetime.now(UTC)
        start = world.start()
        _, connected = world.connect(start)

        shop_id = world.seller.shop_id
        assert connected.external_id == str(shop_id)
        assert connected.name == "OnboardingPrints"
        assert connected.currency == "EUR"
        assert connected.api_base_url == world.base_url
        assert set(connected.scopes) == WANTED_SCOPES
        assert set(connected.credentials) == {"access_token", "refresh_token", "expires_at"}
        assert connected.credentials == world.sandbox.credentials(shop_id)
        assert world.sandbox.granted_scopes(shop_id) == WANTED_SCOPES
        assert connected.access_expires_at is not None
        expected = before + timedelta(seconds=3600)
        assert abs(connected.access_expires_at - expected) < timedelta(seconds=5)
        assert connected.access_expires_at.timestamp() == connected.credentials["expires_at"]
        assert (world.sandbox.consents, world.sandbox.code_exchanges) == (1, 1)

        # the new credentials work for real calls (and hold the scopes those calls need)
        shop = ShopContext(
            shop_id=7,
            external_id=connected.external_id,
            credentials=connected.credentials,
            api_base_url=connected.api_base_url,
        )
        listing_id = world.sandbox.add_listing(
            shop_id, [{"sku": "ONB-1", "price": Decimal("12.00"), "quantity": 4}]
        )
        receipt_id = world.sandbox.add_receipt(
            shop_id,
            [{"listing_id": listing_id, "sku": "ONB-1", "quantity": 1, "price": Decimal("12.00")}],
        )
        page = world.connector.list_orders_changed(shop, since=before - timedelta(days=1))
        assert [order.external_id for order in page.orders] == [str(receipt_id)]
        variants = world.connector.list_listings(shop).variants
        assert [variant.sku for variant in variants] == ["ONB-1"]

        # a refresh afterwards rotates the pair and keeps the granted scopes
        world.sandbox.expire_access_token(shop_id)
        store = InMemoryCredentialStore({shop.shop_id: connected.credentials})
        later = make_connector(credential_store=store)
        try:
            assert [v.sku for v in later.list_listings(shop).variants] == ["ONB-1"]
        finally:
            later.close()
        assert (store.refreshes, world.sandbox.token_refreshes) == (1, 1)
        fresh = store.credentials[shop.shop_id]
        assert fresh["refresh_token"] != connected.credentials["refresh_token"]
        assert fresh == world.sandbox.credentials(shop_id)
        assert world.sandbox.granted_scopes(shop_id) == WANTED_SCOPES

    def test_the_first_shop_added_is_signed_in_by_default(self) -> None:
        sandbox = EtsySandbox(keystring=KEYSTRING, shared_secret=SHARED_SECRET)
        first = sandbox.add_shop(shop_name="DefaultPrints")
        sandbox.add_shop(shop_name="OtherPrints")
        connector = make_connector()
        with serve_in_thread(sandbox.app) as base_url:
            world = World(sandbox, base_url, first, first, connector)
            _, connected = world.connect(world.start())
        connector.close()
        assert (connected.external_id, connected.name) == (str(first.shop_id), "DefaultPrints")

    def test_the_authorization_url_carries_a_correct_s256_challenge(self, world: World) -> None:
        start = world.start(code_verifier=RFC_VERIFIER, api_base_url=None, state="st-1")
        url = world.connector.authorization_url(start)
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "https",
            "www.etsy.com",
            "/oauth/connect",
        )
        query = parse_qs(parts.query, keep_blank_values=True)
        assert {key: values[0] for key, values in query.items()} == {
            "response_type": "code",
            "client_id": KEYSTRING,
            "redirect_uri": REDIRECT_URI,
            "scope": "transactions_r transactions_w listings_r listings_w shops_r",
            "state": "st-1",
            "code_challenge": RFC_CHALLENGE,
            "code_challenge_method": "S256",
        }
        assert all(len(values) == 1 for values in query.values())
        # URL-encoded, space-separated (the documentation's shops_r%20shops_w)
        assert "scope=transactions_r%20transactions_w%20listings_r%20listings_w%20shops_r" in url
        assert "redirect_uri=https%3A%2F%2Fhub.example%2Foauth%2Fetsy%2Fcallback" in url

        verifier = secrets.token_urlsafe(64)
        sandboxed = world.connector.authorization_url(world.start(code_verifier=verifier))
        assert sandboxed.startswith(world.base_url + "/oauth/connect?")
        sent = dict(parse_qsl(urlsplit(sandboxed).query))
        assert sent["code_challenge"] == _s256(verifier)
        assert "=" not in sent["code_challenge"]

    def test_a_start_without_a_verifier_is_a_clear_error(self, world: World) -> None:
        with pytest.raises(ValueError, match="code_verifier"):
            world.connector.authorization_url(world.start(code_verifier=None))
        with pytest.raises(ValueError, match="43 to 128"):
            world.connector.authorization_url(world.start(code_verifier="short"))
        assert world.sandbox.consents == 0

    def test_a_wrong_verifier_is_refused(self, world: World) -> None:
        start = world.start()
        callback = world.consent(world.connector.authorization_url(start))
        before = world.sandbox.credentials(world.seller.shop_id)
        wrong = replace(start, code_verifier=secrets.token_urlsafe(48))
        with pytest.raises(AuthorizationRejected, match="code_verifier is invalid"):
            world.connector.complete_authorization(callback, wrong)
        assert world.sandbox.credentials(world.seller.shop_id) == before  # nothing issued
        assert world.sandbox.code_exchanges == 1

    def test_a_replayed_code_is_refused_the_second_time(self, world: World) -> None:
        start = world.start()
        callback, connected = world.connect(start)
        with pytest.raises(AuthorizationRejected, match="invalid_grant"):
            world.connector.complete_authorization(callback, start)
        assert world.sandbox.code_exchanges == 2
        assert world.sandbox.credentials(world.seller.shop_id) == connected.credentials

    def test_an_expired_code_is_refused(self, world: World) -> None:
        start = world.start()
        callback = world.consent(world.connector.authorization_url(start))
        world.sandbox.expire_authorization_codes()
        with pytest.raises(AuthorizationRejected, match="expired"):
            world.connector.complete_authorization(callback, start)

    def test_a_denied_consent_is_rejected(self, world: World) -> None:
        world.sandbox.deny_next_consent = True
        start = world.start()
        callback = world.consent(world.connector.authorization_url(start))
        assert callback.query["error"] == "access_denied"
        assert callback.query["state"] == start.state
        assert "code" not in callback.query
        with pytest.raises(AuthorizationRejected, match="The user denied the request"):
            world.connector.callback_state(callback)
        with pytest.raises(AuthorizationRejected, match="access_denied"):
            world.connector.complete_authorization(callback, start)
        assert world.sandbox.code_exchanges == 0  # refused before any call
        # the switch is spent: the seller grants the next time
        _, connected = world.connect(world.start())
        assert connected.external_id == str(world.seller.shop_id)

    def test_callbacks_without_state_or_code_are_rejected(self, world: World) -> None:
        for query in ({"code": "abc"}, {"state": "st"}, {"state": "", "code": "abc"}, {}):
            with pytest.raises(AuthorizationRejected):
                world.connector.callback_state(AuthorizationCallback(query=query))

    def test_a_callback_for_another_state_is_rejected_before_any_call(self, world: World) -> None:
        start = world.start()
        callback = world.consent(world.connector.authorization_url(start))
        other = replace(start, state="someone-elses-state")
        with pytest.raises(AuthorizationRejected, match="state"):
            world.connector.complete_authorization(callback, other)
        assert world.sandbox.code_exchanges == 0
        world.connector.complete_authorization(callback, start)  # the code is still good

    def test_a_redirect_uri_other_than_the_consents_is_refused(self, world: World) -> None:
        start = world.start()
        callback = world.consent(world.connector.authorization_url(start))
        moved = replace(start, redirect_uri="https://hub.example/elsewhere")
        with pytest.raises(AuthorizationRejected, match="redirect_uri"):
            world.connector.complete_authorization(callback, moved)


# --------------------------------------------------------------------------------------------
# The sandbox over HTTP: what the connector relies on it to reproduce
# --------------------------------------------------------------------------------------------


def _consent_query(**changes: str | None) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": KEYSTRING,
        "redirect_uri": REDIRECT_URI,
        "scope": "listings_r shops_r",
        "state": "st-9",
        "code_challenge": RFC_CHALLENGE,
        "code_challenge_method": "S256",
    }
    for key, value in changes.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = value
    return query


def _redirected(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return dict(parse_qsl(urlsplit(location).query))


class TestTheSandboxConsentAndTokenEndpoints:
    def test_consent_errors_as_etsy_answers_them(self, world: World) -> None:
        with httpx.Client(base_url=world.base_url, follow_redirects=False) as client:
            unknown = client.get("/oauth/connect", params=_consent_query(client_id="nope"))
            assert unknown.status_code == 400
            assert "location" not in unknown.headers
            assert unknown.json()["error"] == "invalid_client"
            plain_http = client.get(
                "/oauth/connect", params=_consent_query(redirect_uri="http://hub.example/cb")
            )
            assert (plain_http.status_code, "location" in plain_http.headers) == (400, False)

            refusals = {
                "code_challenge": _consent_query(code_challenge=None),
                "code_challenge_method": _consent_query(code_challenge_method="plain"),
                "scope": _consent_query(scope="listings_r everything_w"),
                "response_type": _consent_query(response_type="token"),
            }
            errors = {
                name: _redirected(client.get("/oauth/connect", params=query))
                for name, query in refusals.items()
            }
        assert errors["code_challenge"]["error"] == "invalid_request"
        assert "code_challenge" in errors["code_challenge"]["error_description"]
        assert errors["code_challenge_method"]["error"] == "invalid_request"
        assert "S256" in errors["code_challenge_method"]["error_description"]
        assert errors["scope"]["error"] == "invalid_scope"
        assert errors["response_type"]["error"] == "unsupported_response_type"
        assert all(found["state"] == "st-9" and "code" not in found for found in errors.values())
        assert world.sandbox.consents == 0

    def test_the_code_grant_answers_the_documented_token_and_is_single_use(
        self, world: World
    ) -> None:
        with httpx.Client(base_url=world.base_url, follow_redirects=False) as client:
            granted = _redirected(client.get("/oauth/connect", params=_consent_query()))
            assert granted["state"] == "st-9"
            grant = {
                "grant_type": "authorization_code",
                "client_id": KEYSTRING,
                "redirect_uri": REDIRECT_URI,
                "code": granted["code"],
            }
            missing = client.post("/v3/public/oauth/token", data=grant)
            assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
            token = client.post(
                "/v3/public/oauth/token", data={**grant, "code_verifier": RFC_VERIFIER}
            )
            assert token.status_code == 200
            body = token.json()
            assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
            assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
            again = client.post(
                "/v3/public/oauth/token", data={**grant, "code_verifier": RFC_VERIFIER}
            )
            assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")

            bearer = {**API_KEY, "authorization": f"Bearer {body['access_token']}"}
            me = client.get("/v3/application/users/me", headers=bearer)
            assert me.status_code == 200
            assert set(me.json()) == {"user_id", "shop_id"}
            assert me.json()["shop_id"] == world.seller.shop_id
            user_id = me.json()["user_id"]
            assert body["access_token"].startswith(f"{user_id}.")
            assert body["refresh_token"].startswith(f"{user_id}.")

            shop = client.get(f"/v3/application/shops/{world.seller.shop_id}", headers=bearer)
            assert shop.status_code == 200
            documented = {
                "shop_id",
                "user_id",
                "shop_name",
                "create_date",
                "created_timestamp",
                "title",
                "announcement",
                "currency_code",
                "is_vacation",
                "url",
                "listing_active_count",
                "login_name",
                "languages",
                "shop_location_country_iso",
            }
            assert documented <= set(shop.json())
            assert shop.json()["user_id"] == user_id
            assert (shop.json()["shop_name"], shop.json()["currency_code"]) == (
                "OnboardingPrints",
                "EUR",
            )

            # the grant holds listings_r and shops_r only: receipts need transactions_r
            receipts = client.get(
                f"/v3/application/shops/{world.seller.shop_id}/receipts", headers=bearer
            )
            assert (receipts.status_code, receipts.json()["error"]) == (
                403,
                "insufficient_scope",
            )
            listings = client.get(
                f"/v3/application/shops/{world.seller.shop_id}/listings", headers=bearer
            )
            assert listings.status_code == 200

    def test_getme_needs_the_shops_r_scope(self, world: World) -> None:
        with httpx.Client(base_url=world.base_url, follow_redirects=False) as client:
            query = _consent_query(scope="listings_r")
            granted = _redirected(client.get("/oauth/connect", params=query))
            token = client.post(
                "/v3/public/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "client_id": KEYSTRING,
                    "redirect_uri": REDIRECT_URI,
                    "code": granted["code"],
                    "code_verifier": RFC_VERIFIER,
                },
            ).json()
            bearer = {**API_KEY, "authorization": f"Bearer {token['access_token']}"}
            me = client.get("/v3/application/users/me", headers=bearer)
            assert (me.status_code, me.json()["error"]) == (403, "insufficient_scope")
            # seeded tokens hold every scope
            seeded = {**API_KEY, "authorization": f"Bearer {world.first.access_token}"}
            assert client.get("/v3/application/users/me", headers=seeded).json() == {
                "user_id": client.get(
                    f"/v3/application/shops/{world.first.shop_id}", headers=seeded
                ).json()["user_id"],
                "shop_id": world.first.shop_id,
            }
