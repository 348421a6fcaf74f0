"""The shared HTTP layer: one client factory, short transient retries, Retry-After, exact JSON.

Only quick transient failures are retried here (a reset connection, a 502/503 asking for at most
a second); anything longer becomes an error carrying ``retry_after`` so the sync layer re-sends
the operation later instead of holding a worker thread.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from tenacity import Retrying as _Retrying

from connectors import url_guard
from connectors.contract import (
    AuthError,
    ConnectorConfig,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)

QUICK_RETRY_ATTEMPTS = 3
QUICK_RETRY_MAX_WAIT = 1.0  # seconds: longer waits leave the thread
MAX_CONNECTIONS = 20
MAX_KEEPALIVE = 10
MARKETPLACE_MESSAGE_CHARS = 500
# A Retry-After beyond a day is a broken header, not a plan: capped so the sync layer's
# ``now + timedelta(seconds=...)`` stays in range (``1e400`` parses as infinity).
MAX_RETRY_AFTER_SECONDS = 24 * 60 * 60


class UnreadableJSON(ValueError):
    """JSON the connectors refuse to read: nested past the decoder's limit, or carrying the
    non-standard ``NaN``/``Infinity`` constants. A ``ValueError``, so every reader that already
    classifies invalid JSON classifies these too."""


class GuardedClient(httpx.Client):
    """An ``httpx.Client`` that knows its response size limit, for ``send`` to count the
    decoded body against (the transport counts the bytes as sent)."""

    def __init__(self, *, max_response_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_response_bytes = max_response_bytes


def build_client(
    config: ConnectorConfig,
    *,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client with timeouts well below any worker time limit and bounded connections,
    behind the outbound guard (``connectors.url_guard``): public addresses only unless
    ``config.allow_private_addresses``, bodies capped at ``config.max_response_bytes``, and
    redirects never followed (a 3xx is an error, see ``error_for_status``).

    The transport is always explicit, so httpx reads no proxy from the environment: a proxy
    would resolve names itself and defeat the connect-time address check.
    """
    timeout = httpx.Timeout(
        config.http_timeout_seconds, connect=min(5.0, config.http_timeout_seconds)
    )
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE)
    guarded = url_guard.guard_transport(
        transport or httpx.HTTPTransport(limits=limits),
        allow_private_addresses=config.allow_private_addresses,
        max_response_bytes=config.max_response_bytes,
    )
    return GuardedClient(
        max_response_bytes=config.max_response_bytes,
        base_url=base_url,
        headers={"User-Agent": config.user_agent, **(headers or {})},
        timeout=timeout,
        limits=limits,
        transport=guarded,
        follow_redirects=False,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return _bounded_wait(seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _bounded_wait((when - (now or datetime.now(UTC))).total_seconds())


def _bounded_wait(seconds: float) -> float:
    return min(max(0.0, seconds), float(MAX_RETRY_AFTER_SECONDS))


def decode_json(content: bytes) -> Any:
    """Money stays exact: every JSON number with a fraction becomes a Decimal.

    Anything unreadable raises ``ValueError`` (``UnreadableJSON`` for what ``json`` itself
    would let through): callers classify invalid JSON by catching ``ValueError`` alone, so a
    body nested thousands deep must not escape as ``RecursionError``, and ``NaN`` must not
    reach a mapper or a request body that ``allow_nan=False`` encoding later refuses.
    """
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise UnreadableJSON("the JSON is nested deeper than the decoder's limit") from error


def _refuse_constant(name: str) -> Any:
    raise UnreadableJSON(f"the JSON carries the non-standard constant {name}")


def error_for_status(
    response: httpx.Response, *, marketplace: str, message: str | None = None
) -> ConnectorError | None:
    """The one table from HTTP status to error class; None for success."""
    status = response.status_code
    what = f"{marketplace}: {response.request.method} {response.request.url.path} -> {status}"
    if 300 <= status < 400 and status != 304:
        return _redirect_error(response, what=what, marketplace=marketplace)
    if status < 400:
        return None
    detail = message or response.text[:MARKETPLACE_MESSAGE_CHARS]
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        return RateLimited(
            f"{what}: rate limited", retry_after=retry_after, marketplace=marketplace, status=status
        )
    if status >= 500:
        return TransientError(
            f"{what}: server error", retry_after=retry_after, marketplace=marketplace, status=status
        )
    if status in (401, 403):
        return AuthError(f"{what}: {detail}", marketplace=marketplace, status=status)
    if status == 404:
        return NotFound(
            f"{what}: not found", marketplace_message=detail, marketplace=marketplace, status=status
        )
    return PermanentError(
        f"{what}: {detail}", marketplace_message=detail, marketplace=marketplace, status=status
    )


def _redirect_error(response: httpx.Response, *, what: str, marketplace: str) -> ConnectorError:
    """Connectors never follow redirects: a redirect to a private address must not be taken,
    and a marketplace API that redirects is misconfigured (a shop URL without ``www``, http
    instead of https). The target is named without its query or user info: either may carry
    credentials."""
    location = response.headers.get("location", "")
    try:
        joined = response.request.url.join(location)
        target = str(joined.copy_with(query=None, fragment=None, userinfo=b""))
    except (httpx.InvalidURL, ValueError):
        target = "an invalid location"
    detail = (
        f"redirected to {target}; redirects are not followed: set the shop's URL to the "
        "address the API answers at"
    )
    return PermanentError(
        f"{what}: {detail}",
        marketplace_message=detail,
        marketplace=marketplace,
        status=response.status_code,
    )


def error_for_exception(error: httpx.HTTPError, *, marketplace: str) -> ConnectorError:
    if isinstance(error, httpx.TimeoutException):
        return TransientError(
            f"{marketplace}: timed out ({type(error).__name__})", marketplace=marketplace
        )
    return TransientError(
        f"{marketplace}: transport failure ({type(error).__name__}: {error})",
        marketplace=marketplace,
    )


def _quick_retry_wanted(error: BaseException) -> bool:
    if isinstance(error, TransientError) and not isinstance(error, RateLimited):
        return error.retry_after is None or error.retry_after <= QUICK_RETRY_MAX_WAIT
    return False


def _wait(state: RetryCallState) -> float:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, TransientError) and error.retry_after is not None:
        return error.retry_after
    return float(wait_exponential(multiplier=0.1, max=QUICK_RETRY_MAX_WAIT)(state))


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    marketplace: str,
    classify_body: Callable[[httpx.Response], ConnectorError | None] | None = None,
    sleep: Callable[[float], None] | None = None,
    retry_transient: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    """Send with short transient retries; return a successful response or raise its error class.

    ``classify_body`` looks at the body first (errors reported with HTTP 200), then the status
    table applies. ``retry_transient=False`` sends once: for writes that are not safe to repeat
    blind (the caller reads remote state before trying again).
    """

    def attempt() -> httpx.Response:
        try:
            response = _request(client, method, url, **kwargs)
        except httpx.HTTPError as error:
            raise error_for_exception(error, marketplace=marketplace) from error
        except ConnectorError as error:  # the outbound guard's refusals
            error.marketplace = error.marketplace or marketplace
            raise
        problem = classify_body(response) if classify_body else None
        problem = problem or error_for_status(response, marketplace=marketplace)
        if problem is not None:
            raise problem
        return response

    retrying = _Retrying(
        retry=retry_if_exception(_quick_retry_wanted),
        stop=stop_after_attempt(QUICK_RETRY_ATTEMPTS if retry_transient else 1),
        wait=_wait,
        reraise=True,
        sleep=sleep or time.sleep,
    )
    result: httpx.Response = retrying(attempt)
    return result


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """``client.request``, reading the body through a counter of decoded bytes when the client
    has a limit, so a small compressed body cannot unpack into gigabytes."""
    limit = getattr(client, "max_response_bytes", None)
    if not isinstance(limit, int):
        return client.request(method, url, **kwargs)
    with client.stream(method, url, **kwargs) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise url_guard.ResponseTooLarge(response.request.url, limit)
        # What ``Response.read`` stores: the decoded body, so .content, .text and .json() work.
        response._content = bytes(body)
    return response
