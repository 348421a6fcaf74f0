"""The outbound guard under every connector's HTTP client (``connectors.http.build_client``).

Two things, at the transport level so no connector can step around them:

* **Addresses.** Unless ``ConnectorConfig.allow_private_addresses`` (``HUB_ALLOW_PRIVATE_URLS``,
  for sandboxes on loopback), a connection goes only to public addresses. The host is resolved
  once per new connection, every address it resolves to is checked
  (``hub.domain.addresses.forbidden_reason``), and the socket is opened to one of exactly those
  addresses: a name that answers a public address to a check and a private one to the connect
  (DNS rebinding) gets nowhere, because nothing resolves it a second time. This is an httpcore
  network backend (``PinnedBackend``) placed in the connection pool of the client's httpx
  transport, so TLS still verifies the certificate against the host name, and every redirect
  hop, should a caller ever follow one, opens its connection through the same check.
* **Response sizes.** A body longer than ``ConnectorConfig.max_response_bytes``
  (``HUB_MAX_RESPONSE_BYTES``) is cut off while it streams in: an oversized Content-Length is
  refused before any of the body is read, and the bytes are counted as they arrive otherwise.
  ``connectors.http.send`` counts the decoded bytes as well, so a small compressed body cannot
  unpack into gigabytes.

Both failures are ``PermanentError`` subclasses: retrying cannot help.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx

from connectors.contract import PermanentError
from hub.domain.addresses import ALLOW_SETTING, IPAddress, forbidden_reason, is_loopback_name

SIZE_SETTING = "HUB_MAX_RESPONSE_BYTES"

# Attributes under which wrapping transports keep the one they wrap (WooCommerce's query-auth
# transport keeps ``_inner``); followed to find the httpx transport that opens connections.
_INNER_ATTRIBUTES = ("_inner", "inner", "_transport", "transport", "_wrapped", "wrapped")

Resolver = Callable[[str, int], list[str]]


class ForbiddenAddress(PermanentError):
    """A request to a loopback, private, link-local or otherwise non-public address, refused
    before any connection was made."""

    def __init__(self, host: str, address: str, reason: str, **kw: Any) -> None:
        shown = host if host == address else f"{host} ({address})"
        message = (
            f"refused to connect to {shown}: it is {reason}; the hub only calls public "
            f"addresses unless {ALLOW_SETTING}=true (ConnectorConfig.allow_private_addresses), "
            "which is meant for sandboxes only"
        )
        super().__init__(message, marketplace_message=message, **kw)
        self.host = host
        self.address = address
        self.reason = reason


class ResponseTooLarge(PermanentError):
    """A response body over the configured limit, cut off while it was read."""

    def __init__(
        self, url: httpx.URL | str, limit: int, *, declared: int | None = None, **kw: Any
    ) -> None:
        where = httpx.URL(url).copy_with(query=None, fragment=None, userinfo=b"")  # no secrets
        why = (
            f"it declared {declared} bytes and was not read"
            if declared is not None
            else "it was cut off there"
        )
        message = (
            f"the response from {where} is larger than {limit} bytes: {why} "
            f"({SIZE_SETTING} sets the limit)"
        )
        super().__init__(message, marketplace_message=message, **kw)
        self.limit = limit


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats.

    Goes through ``getaddrinfo`` like the socket itself would, so numeric forms the C library
    accepts (``2130706433``, ``0x7f.1``) resolve here exactly as they would on connect.
    """
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no IPv4 or IPv6 address")
    return addresses


def check_resolved(host: str, addresses: Iterable[str]) -> list[IPAddress]:
    """The parsed addresses, or ``ForbiddenAddress`` when any one of them is not public.

    All must pass: a name answering both a public and a private address is refused rather
    than trusted to pick the public one.
    """
    checked: list[IPAddress] = []
    if is_loopback_name(host):
        raise ForbiddenAddress(host, host, "a loopback name")
    for text in addresses:
        address = ip_address(text.split("%", 1)[0])
        reason = forbidden_reason(address)
        if reason is not None:
            raise ForbiddenAddress(host, str(address), reason)
        checked.append(address)
    return checked


class PinnedBackend(httpcore.NetworkBackend):
    """Resolve once, check every address, connect to a checked address and nothing else.

    The connection is opened to the address literal, so the operating system does not resolve
    the name again; httpcore passes the original host name to TLS (SNI and certificate
    verification), which this backend leaves alone.
    """

    def __init__(
        self, inner: httpcore.NetworkBackend | None = None, *, resolver: Resolver | None = None
    ) -> None:
        self._inner = inner or httpcore.SyncBackend()
        self._resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = check_resolved(host, (self._resolver or resolve)(host, port))
        last: Exception | None = None
        for address in addresses:  # in the resolver's order, as create_connection would
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None  # check_resolved never returns an empty list
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise ForbiddenAddress(path, path, "a local socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _chain(transport: httpx.BaseTransport) -> Iterator[object]:
    """``transport`` and the transports it wraps, outermost first (``_INNER_ATTRIBUTES``)."""
    node: object = transport
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        node = next(
            (
                inner
                for name in _INNER_ATTRIBUTES
                if isinstance(inner := getattr(node, name, None), httpx.BaseTransport)
            ),
            None,
        )


def in_process(transport: httpx.BaseTransport) -> bool:
    """A transport that answers without any network (httpx's and respx's mock transports),
    itself or under the wrappers around it."""
    return any(
        isinstance(node, httpx.MockTransport | httpx.WSGITransport) for node in _chain(transport)
    )


def pin_connections(transport: httpx.BaseTransport, backend: PinnedBackend) -> bool:
    """Put ``backend`` under the httpx transport that ``transport`` is or wraps; False when
    there is none, or it connects through a proxy.

    Uses httpx's and httpcore's internals (``HTTPTransport._pool``,
    ``ConnectionPool._network_backend``): versions are pinned, and
    ``tests/unit/test_url_guard.py`` fails if they change.
    """
    for node in _chain(transport):
        if isinstance(node, httpx.HTTPTransport):
            pool = getattr(node, "_pool", None)
            proxied = isinstance(pool, httpcore.HTTPProxy | httpcore.SOCKSProxy)
            if (
                isinstance(pool, httpcore.ConnectionPool)
                and not proxied
                and hasattr(pool, "_network_backend")
            ):
                pool._network_backend = backend
                return True
            return False
    return False


class CheckedNamesTransport(httpx.BaseTransport):
    """The fallback where connections cannot be pinned (a proxy, a transport of unknown make):
    each request's host is resolved and checked before it is handed on. Catches literal and
    resolved private addresses, but not a name that changes its answer between this check and
    the connection (DNS rebinding)."""

    def __init__(self, inner: httpx.BaseTransport, *, resolver: Resolver | None = None) -> None:
        self._inner = inner
        self._resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = (self._resolver or resolve)(url.host, port)
        except httpcore.ConnectError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        check_resolved(url.host, addresses)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


# --------------------------------------------------------------------------------------------
# Response sizes
# --------------------------------------------------------------------------------------------


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, url: httpx.URL, limit: int) -> None:
        self._inner = inner
        self._url = url
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise ResponseTooLarge(self._url, self._limit)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class SizeCappedTransport(httpx.BaseTransport):
    """Refuses a declared Content-Length over ``limit`` before reading, and cuts off a body
    (as sent, before decompression) that grows past it while streaming."""

    def __init__(self, inner: httpx.BaseTransport, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_response_bytes must be positive, got {limit}")
        self._inner = inner
        self.limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.limit:
            response.close()
            raise ResponseTooLarge(request.url, self.limit, declared=int(declared))
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _CappedStream(stream, request.url, self.limit)
        return response

    def close(self) -> None:
        self._inner.close()


def guard_transport(
    transport: httpx.BaseTransport,
    *,
    allow_private_addresses: bool,
    max_response_bytes: int,
    resolver: Resolver | None = None,
) -> httpx.BaseTransport:
    """``transport`` with the address guard (unless allowed) and the size cap."""
    if (
        not allow_private_addresses
        and not in_process(transport)
        and not pin_connections(transport, PinnedBackend(resolver=resolver))
    ):
        transport = CheckedNamesTransport(transport, resolver=resolver)
    return SizeCappedTransport(transport, max_response_bytes)
