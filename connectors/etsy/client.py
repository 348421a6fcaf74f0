"""Etsy Open API v3 transport: auth headers, token refresh, the per-app rate limit, errors.

Every call carries ``Authorization: Bearer <access token>`` and ``x-api-key:
<keystring>:<shared secret>`` (mandatory since 9 Feb 2026,
https://developers.etsy.com/documentation/essentials/authentication). Access tokens expire
(an hour); a token due within a minute, or refused with 401 ``invalid_token``, is refreshed
through the ``CredentialStore`` (Etsy rotates the refresh token on each refresh, so the store
serialises refreshes per shop and persists the new pair) and the call is sent once more.

The rate limit is per app, shared by every shop: ``RequestWindows`` keyed by the keystring,
acquired before each call and synced with ``x-remaining-this-second`` / ``x-remaining-today``
after each answer (https://developers.etsy.com/documentation/essentials/rate-limits). A 429
carries neither those headers nor a reliable Retry-After, so the second's window is marked
spent and the error says to come back when it has passed.

JSON bodies are encoded here, not by httpx (whose ``json=`` cannot encode a ``Decimal``):
``encode_json`` writes a Decimal as its own digits, a JSON number token, so a price of 19.99
leaves as ``19.99``, never as a binary float's neighbour.

Onboarding goes through here too: ``exchange_authorization_code`` (the authorization code
grant with the PKCE verifier) and ``call_with_token`` (a call with a token just issued, before
the shop is stored: no refresh).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import httpx

from connectors.contract import (
    AuthError,
    AuthorizationRejected,
    ConnectorConfig,
    ConnectorError,
    CredentialStore,
    InMemoryCredentialStore,
    PermanentError,
    RateLimited,
    ShopContext,
    TransientError,
)
from connectors.etsy.mappers import error_message
from connectors.http import build_client, decode_json, error_for_status, parse_retry_after, send
from connectors.ratelimit import RateLimiter, RequestWindows

MARKETPLACE = "etsy"
DEFAULT_BASE_URL = "https://api.etsy.com"
API_PREFIX = "/v3/application"
TOKEN_PATH = "/v3/public/oauth/token"  # noqa: S105 - a path, not a secret
REFRESH_MARGIN_SECONDS = 60.0
DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_REQUESTS_PER_SECOND = 10
DEFAULT_REQUESTS_PER_DAY = 10_000
SECOND = 1.0
# Our window is stamped when a call leaves, Etsy's when it arrives: calls that leave a second
# apart can arrive closer together. A slightly longer window absorbs that jitter.
SECOND_WINDOW = 1.05
DAY = 86_400.0
INVALID_TOKEN = "invalid_token"  # noqa: S105 - an OAuth error code
INVALID_GRANT = "invalid_grant"
INVALID_CLIENT = "invalid_client"
REMAINING_HEADERS = (("x-remaining-this-second", SECOND_WINDOW), ("x-remaining-today", DAY))
# Longer counts in an x-remaining header are garbage (Etsy's daily quotas are in the tens of
# thousands), and ``int()`` of thousands of digits raises.
MAX_REMAINING_DIGITS = 12


def request_windows(app_credentials: Mapping[str, Any]) -> RequestWindows:
    """Etsy's default 10 per second and 10,000 per day, or the app's own figures
    (``requests_per_second`` / ``requests_per_day``: Etsy raises them on request)."""
    per_second = int(app_credentials.get("requests_per_second") or DEFAULT_REQUESTS_PER_SECOND)
    per_day = int(app_credentials.get("requests_per_day") or DEFAULT_REQUESTS_PER_DAY)
    return RequestWindows(MARKETPLACE, ((per_second, SECOND_WINDOW), (per_day, DAY)))


class _TokenRefused(AuthError):
    """401 ``invalid_token``: refresh and send once more (never leaves this module)."""


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON in which every ``Decimal`` is a number token of its own digits
    (``Decimal("19.99")`` -> ``19.99``, ``Decimal("0.50")`` -> ``0.50``; fixed-point, never an
    exponent). Objects take string keys; a non-finite number or another type is a
    ``TypeError``/``ValueError`` before anything is sent."""
    return "".join(_json_parts(value)).encode("utf-8")


def _json_parts(value: Any) -> Iterator[str]:
    if value is None or isinstance(value, bool | int | float | str):
        # the standard encoder, which refuses NaN and infinities
        yield json.dumps(value, ensure_ascii=False, allow_nan=False)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as a JSON number")
        yield format(value, "f")
    elif isinstance(value, Mapping):
        yield "{"
        for position, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"a JSON object key must be a string, got {key!r}")
            yield ("," if position else "") + json.dumps(key, ensure_ascii=False) + ":"
            yield from _json_parts(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for position, item in enumerate(value):
            if position:
                yield ","
            yield from _json_parts(item)
        yield "]"
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def pkce_challenge(code_verifier: str) -> str:
    """RFC 7636 ``S256``: base64url(SHA-256(ASCII verifier)) without ``=`` padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _expires_at(credentials: Mapping[str, Any]) -> float:
    value = credentials.get("expires_at")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _shop_label(shop: ShopContext) -> str:
    return f"etsy shop {shop.external_id} (id {shop.shop_id})"


class EtsyClient:
    """Sends one Open API call for one shop and returns its decoded JSON, or raises.

    One httpx client per base URL (Etsy, or a sandbox), created lazily under a lock. The
    newest credentials seen per shop are kept in memory so a stale ``ShopContext`` does not
    refresh again; tokens and secrets never appear in reprs, logs or error messages.
    """

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        rate_limiter: RateLimiter,
        credential_store: CredentialStore | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._keystring = str(config.app_credentials.get("keystring") or "")
        self._shared_secret = str(config.app_credentials.get("shared_secret") or "")
        self.budget = request_windows(config.app_credentials)
        self._limiter = rate_limiter
        self._store: CredentialStore = (
            credential_store or config.credential_store or InMemoryCredentialStore()
        )
        self._sleep = sleep
        self._transport = transport
        self._clock = clock
        self._clients: dict[str, httpx.Client] = {}
        self._tokens: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EtsyClient(app={self._keystring[:4]}…, clients={len(self._clients)})"

    # -- public -------------------------------------------------------------------------------
    def call(
        self,
        shop: ShopContext,
        method: str,
        path: str,
        *,
        resend_safe: bool = True,
        **request: Any,
    ) -> Any:
        """Send ``method path`` (under ``/v3/application``) for ``shop``; return its JSON.

        ``resend_safe=False`` sends once: a timeout then leaves the caller to read remote
        state before trying again (Etsy e-mails the buyer on every tracking write).
        """
        credentials = self._credentials(shop)
        if self._due(credentials):
            credentials = self._refresh(shop, credentials.get("access_token"))
        try:
            response = self._send(shop, credentials, method, path, resend_safe, request)
        except _TokenRefused:
            credentials = self._refresh(shop, credentials.get("access_token"))
            try:
                response = self._send(shop, credentials, method, path, resend_safe, request)
            except _TokenRefused as error:
                raise AuthError(
                    f"{_shop_label(shop)}: the refreshed access token was refused too; "
                    "reconnect the shop",
                    marketplace=MARKETPLACE,
                    status=error.status,
                ) from None
        return _json(response)

    def client_id(self) -> str:
        """The app keystring, Etsy's OAuth ``client_id``."""
        self._api_key()  # both halves must be configured for the flow to end in a shop
        return self._keystring

    def exchange_authorization_code(
        self, api_base_url: str | None, *, code: str, code_verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        """POST the authorization code grant; return the stored-credential keys
        ``access_token``, ``refresh_token`` and ``expires_at`` (epoch seconds).

        Sent once (a code is single-use: a blind resend could only be refused). 400
        ``invalid_grant`` (a spent, expired or unknown code, a verifier that does not match
        the challenge, another ``redirect_uri``) is ``AuthorizationRejected``; a refused
        ``client_id`` is ``AuthError``.
        https://developers.etsy.com/documentation/essentials/authentication ("Requesting an OAuth
        Token")
        """
        self._api_key()  # fail before the code is spent when the app is not configured
        client = self._client_for(_base_url_of(api_base_url))
        self._limiter.acquire(self.budget, self._keystring)
        try:
            response = send(
                client,
                "POST",
                TOKEN_PATH,
                marketplace=MARKETPLACE,
                classify_body=_classify_code_exchange,
                sleep=self._sleep,
                retry_transient=False,
                data={
                    "grant_type": "authorization_code",
                    "client_id": self._keystring,
                    "redirect_uri": redirect_uri,
                    "code": code,
                    "code_verifier": code_verifier,
                },
            )
        except TransientError as error:
            raise type(error)(
                f"etsy: exchanging the authorization code failed ({error.message}); the code "
                "may be spent: start the authorization again",
                retry_after=error.retry_after,
                marketplace=MARKETPLACE,
                status=error.status,
            ) from None
        return self._token_pair("etsy authorization", _json(response), None)

    def call_with_token(
        self, api_base_url: str | None, access_token: str, method: str, path: str, **request: Any
    ) -> Any:
        """Send ``method path`` (under ``/v3/application``) with a token just issued, for a
        shop not stored yet (onboarding): no refresh, a refused token is an ``AuthError``."""
        try:
            response = self._send_with_token(
                _base_url_of(api_base_url), access_token, method, path, True, request
            )
        except _TokenRefused as error:
            raise AuthError(
                f"etsy: the access token just issued was refused ({error.message})",
                marketplace=MARKETPLACE,
                status=error.status,
            ) from None
        return _json(response)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- credentials --------------------------------------------------------------------------
    def _credentials(self, shop: ShopContext) -> dict[str, Any]:
        given = dict(shop.credentials)
        with self._lock:
            known = self._tokens.get(shop.shop_id)
        if known is not None and _expires_at(known) > _expires_at(given):
            return dict(known)
        return given

    def _due(self, credentials: Mapping[str, Any]) -> bool:
        expires = _expires_at(credentials)
        return bool(expires) and self._clock() >= expires - REFRESH_MARGIN_SECONDS

    def _refresh(self, shop: ShopContext, stale_access_token: Any) -> dict[str, Any]:
        stale = stale_access_token if isinstance(stale_access_token, str) else None
        fresh = dict(self._store.refresh(shop, stale, lambda stored: self._exchange(shop, stored)))
        with self._lock:
            self._tokens[shop.shop_id] = fresh
        return fresh

    def _exchange(self, shop: ShopContext, stored: Mapping[str, Any]) -> dict[str, Any]:
        """POST the refresh grant; a refused grant means the shop must be connected again.
        https://developers.etsy.com/documentation/essentials/authentication#refreshing-an-oauth-token"""
        refresh_token = stored.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise AuthError(
                f"{_shop_label(shop)}: no refresh token is stored; reconnect the shop",
                marketplace=MARKETPLACE,
            )
        client = self._client_for(_base_url(shop))  # built before the window starts counting
        self._limiter.acquire(self.budget, self._keystring)
        try:
            response = send(
                client,
                "POST",
                TOKEN_PATH,
                marketplace=MARKETPLACE,
                classify_body=lambda answer: self._classify_refresh(shop, answer),
                sleep=self._sleep,
                retry_transient=False,  # the old refresh token may already be spent
                data={
                    "grant_type": "refresh_token",
                    "client_id": self._keystring,
                    "refresh_token": refresh_token,
                },
            )
        except TransientError as error:
            raise type(error)(
                f"{_shop_label(shop)}: token refresh failed ({error.message}); retry later",
                retry_after=error.retry_after,
                marketplace=MARKETPLACE,
                status=error.status,
            ) from None
        return self._token_pair(_shop_label(shop), _json(response), refresh_token)

    def _classify_refresh(
        self, shop: ShopContext, response: httpx.Response
    ) -> ConnectorError | None:
        if response.status_code not in (400, 401, 403):
            return None
        reason = error_message(_json_or_none(response)) or "refused"
        return AuthError(
            f"{_shop_label(shop)}: token refresh refused ({response.status_code} "
            f"{reason.split(':')[0]}); reconnect the shop",
            marketplace=MARKETPLACE,
            status=response.status_code,
        )

    def _token_pair(self, label: str, body: Any, old_refresh: str | None) -> dict[str, Any]:
        """The stored-credential keys from a token answer ``{access_token, token_type,
        expires_in, refresh_token}``; a refresh answer without a refresh token keeps
        ``old_refresh``."""
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise PermanentError(
                f"{label}: the token endpoint answered without an access token",
                marketplace=MARKETPLACE,
            )
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh = body.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else old_refresh
        if refresh is None:
            raise PermanentError(
                f"{label}: the token endpoint answered without a refresh token",
                marketplace=MARKETPLACE,
            )
        return {
            "access_token": token,
            "refresh_token": refresh,
            "expires_at": int(self._clock()) + lifetime,
        }

    # -- sending ------------------------------------------------------------------------------
    def _api_key(self) -> str:
        if not self._keystring or not self._shared_secret:
            raise AuthError(
                "etsy: the app keystring and shared secret are not configured "
                "(HUB_ETSY_KEYSTRING, HUB_ETSY_SHARED_SECRET)",
                marketplace=MARKETPLACE,
            )
        return f"{self._keystring}:{self._shared_secret}"

    def _send(
        self,
        shop: ShopContext,
        credentials: Mapping[str, Any],
        method: str,
        path: str,
        resend_safe: bool,
        request: dict[str, Any],
    ) -> httpx.Response:
        token = credentials.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"{_shop_label(shop)}: no access token is stored; reconnect the shop",
                marketplace=MARKETPLACE,
            )
        return self._send_with_token(_base_url(shop), token, method, path, resend_safe, request)

    def _send_with_token(
        self,
        base_url: str,
        token: str,
        method: str,
        path: str,
        resend_safe: bool,
        request: dict[str, Any],
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "x-api-key": self._api_key()}
        if "json" in request:  # encoded here, exactly (see encode_json); `request` is reused
            body = encode_json(request["json"])
            request = {key: value for key, value in request.items() if key != "json"}
            request["content"] = body
            headers["Content-Type"] = "application/json"
        client = self._client_for(base_url)  # built before the window starts counting
        self._limiter.acquire(self.budget, self._keystring)
        return send(
            client,
            method,
            API_PREFIX + path,
            marketplace=MARKETPLACE,
            classify_body=self._classify,
            sleep=self._sleep,
            retry_transient=resend_safe,
            headers=headers,
            **request,
        )

    def _classify(self, response: httpx.Response) -> ConnectorError | None:
        """Sync the windows from the headers, then name the failure: 401 ``invalid_token`` is
        refreshable, a 429 spends the second, everything else goes by the status table."""
        self._sync_windows(response)
        status = response.status_code
        if status < 400:
            return None
        message = error_message(_json_or_none(response))
        what = f"etsy: {response.request.method} {response.request.url.path} -> {status}"
        if status == 401 and message is not None and message.startswith(INVALID_TOKEN):
            return _TokenRefused(f"{what}: {message}", marketplace=MARKETPLACE, status=status)
        if status == 429:
            return self._throttled(response, what)
        return error_for_status(response, marketplace=MARKETPLACE, message=message)

    def _throttled(self, response: httpx.Response, what: str) -> RateLimited:
        self._limiter.sync_window(self.budget, self._keystring, period=SECOND_WINDOW, remaining=0)
        waited = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(
            f"{what}: Etsy's per-app rate limit is spent; retry when the window has passed",
            retry_after=waited if waited else SECOND,
            marketplace=MARKETPLACE,
            status=429,
        )

    def _sync_windows(self, response: httpx.Response) -> None:
        for header, period in REMAINING_HEADERS:
            remaining = _remaining(response.headers.get(header))
            if remaining is not None:
                self._limiter.sync_window(
                    self.budget, self._keystring, period=period, remaining=remaining
                )

    def _client_for(self, base_url: str) -> httpx.Client:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = build_client(
                    self._config,
                    base_url=base_url,
                    headers={"Accept": "application/json"},
                    transport=self._transport,
                )
                self._clients[base_url] = client
            return client


def _base_url(shop: ShopContext) -> str:
    return _base_url_of(shop.api_base_url)


def _base_url_of(api_base_url: str | None) -> str:
    return (api_base_url or DEFAULT_BASE_URL).rstrip("/")


def _classify_code_exchange(response: httpx.Response) -> ConnectorError | None:
    """``invalid_grant`` is the callback's fault (``AuthorizationRejected``), a refused
    ``client_id`` the app's configuration (``AuthError``); the status table does the rest."""
    if response.status_code not in (400, 401):
        return None
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, Mapping) else None
    reason = error_message(body) or f"HTTP {response.status_code}"
    if error == INVALID_GRANT:
        return AuthorizationRejected(
            f"etsy: the authorization code was refused ({reason}); start the authorization again",
            marketplace=MARKETPLACE,
            status=response.status_code,
        )
    if error == INVALID_CLIENT:
        return AuthError(
            f"etsy: the token endpoint refused the app's keystring ({reason}); check "
            "HUB_ETSY_KEYSTRING",
            marketplace=MARKETPLACE,
            status=response.status_code,
        )
    return None


def _remaining(value: str | None) -> int | None:
    """An ``x-remaining-*`` count (negative: none left), or None unless ASCII digits: headers
    arrive as Latin-1, where ``str.isdigit`` passes ``"²"``, which ``int()`` then refuses."""
    text = (value or "").strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_REMAINING_DIGITS:
        return None
    return max(0, int(text))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return decode_json(response.content) if response.content else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return decode_json(response.content)
    except ValueError as error:
        raise PermanentError(
            f"etsy: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not JSON",
            marketplace=MARKETPLACE,
            status=response.status_code,
        ) from error
