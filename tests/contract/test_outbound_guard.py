"""The outbound guard under every connector's client (connectors.url_guard via build_client),
against a real server on loopback: private addresses refused unless allowed, connections pinned
to the checked address, redirects not followed, response sizes capped while streaming."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import httpcore
import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from connectors import registry, url_guard
from connectors.contract import ConnectorConfig, ConnectorError, PermanentError, ShopContext
from connectors.http import build_client, send
from connectors.sandbox_server import serve_in_thread
from connectors.url_guard import (
    ForbiddenAddress,
    PinnedBackend,
    ResponseTooLarge,
    pin_connections,
)
from connectors.woocommerce.client import _QueryAuthTransport
from hub.settings import Settings

KIB = 1024
GUARDED = ConnectorConfig(allow_private_addresses=False)
SANDBOX = ConnectorConfig(allow_private_addresses=True)


class Server:
    """A loopback server that counts what reached it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.url = ""

    def app(self) -> Starlette:
        async def hello(request: Request) -> Response:
            self.hits.append(request.url.path)
            return PlainTextResponse("hello")

        async def moved(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def big(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(b"x" * int(request.query_params["size"]))

        async def stream(request: Request) -> Response:
            self.hits.append(request.url.path)
            chunks = int(request.query_params["chunks"])

            async def body() -> AsyncIterator[bytes]:
                for _ in range(chunks):
                    yield b"y" * KIB

            return StreamingResponse(body())  # chunked: no Content-Length to go by

        async def bomb(request: Request) -> Response:
            self.hits.append(request.url.path)
            packed = gzip.compress(b"0" * int(request.query_params["size"]))
            return Response(packed, headers={"Content-Encoding": "gzip"})

        async def anything(request: Request) -> Response:
            self.hits.append(request.url.path)
            return PlainTextResponse("{}", status_code=404)

        return Starlette(
            routes=[
                Route("/hello", hello),
                Route("/moved", moved),
                Route("/big", big),
                Route("/stream", stream),
                Route("/bomb", bomb),
                Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    with serve_in_thread(running.app()) as url:
        running.url = url
        yield running


@pytest.fixture(autouse=True)
def _forget_hits(server: Server) -> None:
    server.hits.clear()


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def get(config: ConnectorConfig, url: str, **kwargs: Any) -> httpx.Response:
    with build_client(config, base_url="") as client:
        return send(client, "GET", url, marketplace="test", sleep=lambda _s: None, **kwargs)


def only_127_0_0_1_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """There is no public server in a test: let 127.0.0.1 stand for one, every other address
    keeps its real verdict."""
    real = url_guard.forbidden_reason

    def reason(address: IPv4Address | IPv6Address) -> str | None:
        return None if address == IPv4Address("127.0.0.1") else real(address)

    monkeypatch.setattr(url_guard, "forbidden_reason", reason)


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------


def test_a_sandbox_on_loopback_is_refused_without_the_setting(server: Server) -> None:
    with pytest.raises(ForbiddenAddress) as refused:
        get(GUARDED, f"{server.url}/hello")
    message = refused.value.message
    assert "127.0.0.1" in message
    assert "loopback" in message
    assert "HUB_ALLOW_PRIVATE_URLS" in message
    assert isinstance(refused.value, PermanentError)  # not retried, fails the operation
    assert refused.value.marketplace == "test"
    assert server.hits == []  # nothing was sent


def test_a_sandbox_on_loopback_is_reached_with_the_setting(server: Server) -> None:
    assert get(SANDBOX, f"{server.url}/hello").text == "hello"
    assert server.hits == ["/hello"]


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "0x7f000001", "017700000001", "127.1", "localhost"]
)
def test_numeric_and_named_tricks_for_loopback_are_refused(server: Server, host: str) -> None:
    url = f"http://{host}:{port_of(server)}/hello"
    with pytest.raises(ForbiddenAddress, match="loopback"):
        get(GUARDED, url)
    assert server.hits == []
    # The trick is real: with the setting, the same URL reaches the server on 127.0.0.1.
    assert get(SANDBOX, url).text == "hello"


def test_an_ipv4_mapped_ipv6_literal_is_refused(server: Server) -> None:
    with pytest.raises(ForbiddenAddress, match="loopback"):
        get(GUARDED, f"http://[::ffff:127.0.0.1]:{port_of(server)}/hello")
    assert server.hits == []


def test_cloud_metadata_is_refused_before_any_connection() -> None:
    started = time.monotonic()
    with pytest.raises(ForbiddenAddress, match=r"169\.254\.169\.254.*link-local"):
        get(GUARDED, "http://169.254.169.254/latest/meta-data/")
    assert time.monotonic() - started < 1.0  # no connect attempt, so no connect timeout


def test_a_name_with_any_private_answer_is_refused() -> None:
    backend = PinnedBackend(resolver=lambda _host, _port: ["93.184.215.14", "10.0.0.8"])
    with pytest.raises(ForbiddenAddress, match=r"mixed\.example \(10\.0\.0\.8\).*private"):
        backend.connect_tcp("mixed.example", 443)


def test_the_connection_goes_to_the_checked_address_never_to_a_second_lookup(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers a public address to the check and a private one
    afterwards. The guard resolves once per connection and connects to that address literal,
    so the name is never looked up again (here the system could not resolve it at all)."""
    only_127_0_0_1_is_public(monkeypatch)
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    monkeypatch.setattr(url_guard, "resolve", lambda _host, _port: next(answers))
    url = f"http://rebind.invalid:{port_of(server)}/hello"

    assert get(GUARDED, url).text == "hello"
    assert server.hits == ["/hello"]
    assert "rebind.invalid" not in looked_up  # the socket got 127.0.0.1, not the name
    with pytest.raises(ForbiddenAddress, match=r"10\.0\.0\.1"):  # a new connection checks again
        get(GUARDED, url)


def test_every_connection_of_the_default_transport_is_pinned() -> None:
    """build_client's own transport, and one wrapped the way WooCommerce wraps its own."""
    for transport in (httpx.HTTPTransport(), _QueryAuthTransport(httpx.HTTPTransport())):
        backend = PinnedBackend()
        assert pin_connections(transport, backend)
        inner = getattr(transport, "_inner", transport)
        assert inner._pool._network_backend is backend
    assert not pin_connections(httpx.HTTPTransport(proxy="http://proxy.example:3128"), backend)


def test_an_unpinnable_transport_still_has_its_names_checked(server: Server) -> None:
    class Opaque(httpx.BaseTransport):
        def __init__(self) -> None:
            self.delegate = httpx.HTTPTransport()  # under no attribute the guard follows

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return self.delegate.handle_request(request)

    with (
        build_client(GUARDED, base_url="", transport=Opaque()) as client,
        pytest.raises(ForbiddenAddress),
    ):
        send(client, "GET", f"{server.url}/hello", marketplace="test")
    assert server.hits == []


def test_an_unresolvable_name_is_a_transient_transport_failure() -> None:
    with pytest.raises(ConnectorError) as failed:
        get(GUARDED, "http://no-such-host.invalid/")
    assert not isinstance(failed.value, PermanentError)
    assert "cannot resolve" in failed.value.message


# --------------------------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------------------------


def test_redirects_are_not_followed(server: Server) -> None:
    target = f"{server.url}/hello?token=secret"
    with pytest.raises(PermanentError) as refused:
        get(SANDBOX, f"{server.url}/moved", params={"to": target})
    assert "redirected to" in refused.value.message
    assert "/hello" in refused.value.message
    assert "secret" not in refused.value.message
    assert server.hits == ["/moved"]  # the target was never requested


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.2:{port}/hello", "http://[::1]/"],
)
def test_a_followed_redirect_to_a_private_address_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """Should a caller ask httpx to follow redirects, every hop opens its connection through
    the same guard."""
    only_127_0_0_1_is_public(monkeypatch)
    to = target.format(port=port_of(server))
    with pytest.raises(ForbiddenAddress):
        get(GUARDED, f"{server.url}/moved", params={"to": to}, follow_redirects=True)
    assert server.hits == ["/moved"]
    # The first hop was allowed: a redirect to the same public host is followed.
    assert (
        get(GUARDED, f"{server.url}/moved", params={"to": "/hello"}, follow_redirects=True).text
        == "hello"
    )


# --------------------------------------------------------------------------------------------
# Response sizes
# --------------------------------------------------------------------------------------------


def capped(limit: int) -> ConnectorConfig:
    return ConnectorConfig(allow_private_addresses=True, max_response_bytes=limit)


def test_a_declared_oversized_body_is_refused_before_it_is_read(server: Server) -> None:
    with pytest.raises(
        ResponseTooLarge,
        match=r"larger than 1024 bytes: it declared 4096 bytes.*HUB_MAX_RESPONSE_BYTES",
    ):
        get(capped(KIB), f"{server.url}/big", params={"size": 4 * KIB})
    assert get(capped(KIB), f"{server.url}/big", params={"size": KIB}).content == b"x" * KIB


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(server: Server) -> None:
    with pytest.raises(ResponseTooLarge) as cut:
        get(capped(4 * KIB), f"{server.url}/stream", params={"chunks": 1000})
    assert isinstance(cut.value, PermanentError)
    assert "token" not in cut.value.message
    assert len(get(capped(4 * KIB), f"{server.url}/stream", params={"chunks": 4}).content) == (
        4 * KIB
    )


def test_the_transport_counts_bytes_as_they_stream(server: Server) -> None:
    """Below ``send``: any use of the client is capped, not only reads through ``send``."""
    with (
        build_client(capped(4 * KIB), base_url=server.url) as client,
        client.stream("GET", "/stream", params={"chunks": 1000}) as response,
    ):
        received: list[bytes] = []
        with pytest.raises(ResponseTooLarge):
            received.extend(response.iter_raw())
    assert sum(map(len, received)) <= 4 * KIB


def test_a_compressed_body_is_counted_as_it_unpacks(server: Server) -> None:
    """A gzip bomb: a few KiB on the wire, megabytes decoded."""
    with pytest.raises(ResponseTooLarge):
        get(capped(64 * KIB), f"{server.url}/bomb", params={"size": 8 * 1024 * KIB})
    small = get(capped(64 * KIB), f"{server.url}/bomb", params={"size": 32 * KIB})
    assert small.content == b"0" * 32 * KIB
    assert small.text.startswith("000")


def test_the_limit_and_the_guard_come_from_the_settings() -> None:
    config = registry.config_from_settings("shopify", Settings())
    assert config.allow_private_addresses is False
    assert config.max_response_bytes == 20 * 1024 * KIB
    sandbox = registry.config_from_settings(
        "woocommerce", Settings(allow_private_urls=True, max_response_bytes=5 * KIB)
    )
    assert sandbox.allow_private_addresses is True
    assert sandbox.max_response_bytes == 5 * KIB


# --------------------------------------------------------------------------------------------
# Every connector, as the hub builds it
# --------------------------------------------------------------------------------------------

SHOPS = {
    "shopify": ShopContext(
        shop_id=1, external_id="guard.myshopify.com", credentials={"access_token": "shpat_x"}
    ),
    "etsy": ShopContext(
        shop_id=2,
        external_id="12345",
        credentials={
            "access_token": "12345.token",
            "refresh_token": "12345.refresh",
            "expires_at": int(time.time()) + 3000,
        },
    ),
    "woocommerce": ShopContext(
        shop_id=3,
        external_id="guard.example",
        credentials={"consumer_key": "ck_" + "a" * 40, "consumer_secret": "cs_" + "b" * 40},
    ),
}


def hub_settings(*, allow: bool) -> Settings:
    return Settings(
        allow_private_urls=allow,
        etsy_keystring="keystring",
        etsy_shared_secret=SecretStr("shared"),
        http_timeout_seconds=5,
    )


@pytest.mark.parametrize("name", sorted(SHOPS))
def test_every_connector_refuses_a_shop_on_loopback_unless_allowed(
    server: Server, name: str
) -> None:
    shop = ShopContext(**{**SHOPS[name].__dict__, "api_base_url": server.url})
    since = datetime.now(UTC) - timedelta(days=1)
    connector = registry.create(
        name, registry.config_from_settings(name, hub_settings(allow=False))
    )
    try:
        with pytest.raises(ForbiddenAddress, match="HUB_ALLOW_PRIVATE_URLS"):
            connector.list_orders_changed(shop, since=since)
    finally:
        connector.close()
    assert server.hits == []

    sandbox = registry.config_from_settings(name, hub_settings(allow=True))
    connector = registry.create(name, sandbox)
    try:
        connector.list_orders_changed(shop, since=since)
    except ConnectorError:
        pass  # the catch-all answers 404: reaching it is the point
    finally:
        connector.close()
    assert server.hits != []


def test_httpcore_exposes_what_the_pinning_relies_on() -> None:
    """The guard writes ``ConnectionPool._network_backend``; fail loudly if httpcore moves it."""
    pool = httpcore.ConnectionPool()
    assert isinstance(pool._network_backend, httpcore.NetworkBackend)
    assert isinstance(httpx.HTTPTransport()._pool, httpcore.ConnectionPool)
