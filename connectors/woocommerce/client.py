"""HTTP for WooCommerce sites: consumer-key auth, the per-site limiter, error classification.

Authentication (https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https):
the consumer key and secret go as HTTP Basic. Some hosts (CGI/FastCGI PHP, some proxies) drop
the ``Authorization`` header before PHP sees it; WooCommerce then treats the call as
anonymous and answers 401 with a permission code such as ``woocommerce_rest_cannot_view``.
On that answer the call is repeated once with ``consumer_key``/``consumer_secret`` query
parameters, and, if that works, the site is remembered as a query-parameter site. The query
parameters are added by a transport wrapper below httpx's request logging, so the URL httpx
logs never holds the secret, and every error message is scrubbed of it.

Rate limits: WooCommerce core has none; a host or WAF may. Each site gets a request window
(``requests_per_second``, configurable) in the shared limiter, and a 429 fills the rest of
the window for every worker. A 429 without ``Retry-After`` still carries a positive wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.contract import (
    AuthError,
    ConnectorConfig,
    ConnectorError,
    PermanentError,
    RateLimited,
    ShopContext,
)
from connectors.http import (
    MARKETPLACE_MESSAGE_CHARS,
    MAX_CONNECTIONS,
    MAX_KEEPALIVE,
    build_client,
    decode_json,
    error_for_status,
    parse_retry_after,
    send,
)
from connectors.ratelimit import RateLimiter, RequestWindows

MARKETPLACE = "woocommerce"
API_PATH = "wp-json/wc/v3/"
TRACKING_API_PATH = "wp-json/wc-shipment-tracking/v3/"
DEFAULT_REQUESTS_PER_SECOND = 25
DEFAULT_429_WAIT_SECONDS = 10.0  # a 429 without Retry-After (WAFs often send none)
QUERY_AUTH_EXTENSION = "woocommerce.query_auth"
BASIC, QUERY = "basic", "query"
# 401 answers meaning "this request arrived without credentials": WooCommerce's permission
# checks answer ``rest_authorization_required_code()`` (401 when nobody is logged in).
HEADER_DROPPED_CODES = frozenset(
    {
        "woocommerce_rest_cannot_view",
        "woocommerce_rest_cannot_create",
        "woocommerce_rest_cannot_edit",
        "woocommerce_rest_cannot_batch",
        "woocommerce_rest_cannot_delete",
        "rest_not_logged_in",
        "rest_forbidden",
    }
)
HEADER_DROPPED_MESSAGE = "consumer key is missing"


@dataclass(frozen=True)
class WooResponse:
    status: int
    body: Any
    headers: httpx.Headers


class _QueryAuthTransport(httpx.BaseTransport):
    """Adds ``consumer_key``/``consumer_secret`` to the URL of requests that ask for it.

    httpx logs ``request.url`` of the request it handed to the transport, so the secret is
    added here, on a copy, and never appears in that log line or in ``response.request``.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        credentials = request.extensions.get(QUERY_AUTH_EXTENSION)
        if credentials is None:
            return self._inner.handle_request(request)
        key, secret = credentials
        extensions = {k: v for k, v in request.extensions.items() if k != QUERY_AUTH_EXTENSION}
        signed = httpx.Request(
            request.method,
            request.url.copy_merge_params({"consumer_key": key, "consumer_secret": secret}),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self._inner.handle_request(signed)

    def close(self) -> None:
        self._inner.close()


class _Reader:
    """Classifies each response of one call and keeps the last one for the caller."""

    def __init__(self, shop: ShopContext, tolerate: Collection[tuple[int, str]]) -> None:
        self._shop = shop
        self._tolerate = tolerate
        self.response: httpx.Response | None = None
        self.body: Any = None
        self.code: str = ""
        self.message: str = ""

    def classify(self, response: httpx.Response) -> ConnectorError | None:
        self.response = response
        self.body = _decode(response)
        self.code, self.message = _wp_error(self.body)
        status = response.status_code
        if status == 429:
            wait = parse_retry_after(response.headers.get("retry-after"))
            return RateLimited(
                f"{self._what(response)}: rate limited by the site or its host",
                retry_after=wait if wait else DEFAULT_429_WAIT_SECONDS,
                marketplace=MARKETPLACE,
                status=status,
            )
        if 300 <= status < 400:
            return PermanentError(
                f"{self._what(response)}: the site redirects to "
                f"{_safe_location(response.headers.get('location'))}; store the shop's final "
                "URL (scheme and www included)",
                marketplace=MARKETPLACE,
                status=status,
            )
        if status >= 400:
            detail = f"{self.code}: {self.message}" if self.code else None
            error = error_for_status(response, marketplace=MARKETPLACE, message=detail)
            if error is not None:  # say which site, and WordPress's code even for a 404
                error.message = f"{self._what(response)}: {detail or 'no error body'}"
                error.args = (error.message,)
            return error
        if self.body is None:
            return PermanentError(
                f"{self._what(response)}: the site answered something that is not JSON "
                "(are pretty permalinks enabled, is a cache or security plugin in the way?)",
                marketplace_message=response.text[:MARKETPLACE_MESSAGE_CHARS],
                marketplace=MARKETPLACE,
                status=status,
            )
        return None

    def tolerated(self) -> bool:
        response = self.response
        return response is not None and (response.status_code, self.code) in self._tolerate

    def header_dropped(self) -> bool:
        """A 401 that says "no credentials arrived" rather than "wrong credentials"."""
        response = self.response
        return (
            response is not None
            and response.status_code == 401
            and (
                self.code in HEADER_DROPPED_CODES or HEADER_DROPPED_MESSAGE in self.message.lower()
            )
        )

    def result(self) -> WooResponse:
        assert self.response is not None
        return WooResponse(self.response.status_code, self.body, self.response.headers)

    def _what(self, response: httpx.Response) -> str:
        return (
            f"woocommerce site {self._shop.external_id}: "
            f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        )


class WooCommerceClient:
    """Sends one REST call for one shop and returns its decoded JSON, or raises its error.

    One httpx client per site base URL, created lazily under a lock so worker threads share
    connections. Credentials travel per request and are never stored, logged or shown in a
    repr; the only per-site memory is the auth mode (Basic or query parameters).
    """

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        rate_limiter: RateLimiter,
        requests_per_second: int = DEFAULT_REQUESTS_PER_SECOND,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = config
        self._limiter = rate_limiter
        self.budget = RequestWindows(MARKETPLACE, ((requests_per_second, 1.0),))
        self._sleep = sleep
        self._transport = transport
        self._clients: dict[str, httpx.Client] = {}
        self._auth_modes: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"WooCommerceClient(sites={len(self._clients)}, "
            f"requests_per_second={self.budget.windows[0][0]})"
        )

    def auth_mode(self, shop: ShopContext) -> str:
        """``basic`` or ``query`` (after the site was found to drop the Authorization header)."""
        with self._lock:
            return self._auth_modes.get(base_url(shop), BASIC)

    def request(
        self,
        shop: ShopContext,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        resend_safe: bool = True,
        tolerate: Collection[tuple[int, str]] = (),
    ) -> WooResponse:
        """One call. ``resend_safe=False`` sends a write once (no quick transient retries);
        ``tolerate`` lists (status, code) answers returned instead of raised."""
        credentials = _credentials(shop)
        site = base_url(shop)
        mode = self.auth_mode(shop)
        call = _Call(method, path, params, json_body, resend_safe, tolerate)
        try:
            return self._attempt(shop, site, mode, credentials, call)
        except _HeaderDropped:
            result = self._attempt(shop, site, QUERY, credentials, call, fallback=True)
            with self._lock:
                self._auth_modes[site] = QUERY
            return result

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _attempt(
        self,
        shop: ShopContext,
        site: str,
        mode: str,
        credentials: tuple[str, str],
        call: _Call,
        *,
        fallback: bool = False,
    ) -> WooResponse:
        self._limiter.acquire(self.budget, account=shop.external_id)
        reader = _Reader(shop, call.tolerate)
        auth: dict[str, Any] = (
            {"auth": httpx.BasicAuth(*credentials)}
            if mode == BASIC
            else {"extensions": {QUERY_AUTH_EXTENSION: credentials}}
        )
        try:
            send(
                self._client_for(site),
                call.method,
                call.path,
                marketplace=MARKETPLACE,
                classify_body=reader.classify,
                sleep=self._sleep,
                retry_transient=call.resend_safe,
                params=dict(call.params) if call.params else None,
                json=call.json_body,
                **auth,
            )
        except ConnectorError as error:
            if reader.tolerated():
                return reader.result()
            if isinstance(error, AuthError) and mode == BASIC and reader.header_dropped():
                raise _HeaderDropped from None
            if isinstance(error, RateLimited) and error.status == 429:
                self._limiter.sync_window(self.budget, shop.external_id, period=1.0, remaining=0)
            if isinstance(error, AuthError) and fallback:
                error.message = f"{error.message} (query-parameter auth, after Basic was dropped)"
                error.args = (error.message,)
            raise _scrubbed(error, credentials) from None
        return reader.result()

    def _client_for(self, site: str) -> httpx.Client:
        with self._lock:
            client = self._clients.get(site)
            if client is None:
                inner = self._transport or httpx.HTTPTransport(
                    limits=httpx.Limits(
                        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE
                    )
                )
                client = build_client(
                    self._config,
                    base_url=site,
                    headers={"Accept": "application/json"},
                    transport=_QueryAuthTransport(inner),
                )
                self._clients[site] = client
            return client


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: Mapping[str, Any] | None
    json_body: Any
    resend_safe: bool
    tolerate: Collection[tuple[int, str]]


class _HeaderDropped(Exception):
    """Basic auth was answered as anonymous: try query parameters once."""


def base_url(shop: ShopContext) -> str:
    """The site root: ``shop.api_base_url`` (sandboxes) or ``https://{external_id}``; the API
    paths are relative to it, so a WordPress in a sub-directory works."""
    root = shop.api_base_url or f"https://{shop.external_id}"
    return root.rstrip("/") + "/"


def _credentials(shop: ShopContext) -> tuple[str, str]:
    key = shop.credentials.get("consumer_key")
    secret = shop.credentials.get("consumer_secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise AuthError(
            f"woocommerce site {shop.external_id} (shop {shop.shop_id}): no consumer key and "
            "secret stored; create a REST API key (read/write) and connect the shop again",
            marketplace=MARKETPLACE,
        )
    return key, secret


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return decode_json(response.content)
    except ValueError:
        return None


def _wp_error(body: Any) -> tuple[str, str]:
    """``(code, message)`` of a WordPress REST error body ``{"code", "message", "data"}``."""
    if not isinstance(body, Mapping):
        return "", ""
    code, message = body.get("code"), body.get("message")
    return (
        code if isinstance(code, str) else "",
        message[:MARKETPLACE_MESSAGE_CHARS] if isinstance(message, str) else "",
    )


def _safe_location(location: str | None) -> str:
    """A redirect target without its query string (it may echo our query-parameter auth)."""
    if not location:
        return "another address"
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


def _scrubbed(error: ConnectorError, credentials: tuple[str, str]) -> ConnectorError:
    """The same error with any trace of the credentials removed from its text."""
    text = error.message
    for secret in credentials:
        text = text.replace(secret, "***")
    if isinstance(error, PermanentError):
        detail = error.marketplace_message
        for secret in credentials:
            detail = detail.replace(secret, "***")
        error.marketplace_message = detail
    if text != error.message:
        error.message = text
        error.args = (text,)
    return error
