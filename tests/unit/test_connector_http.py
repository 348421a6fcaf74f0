"""The shared HTTP layer: Retry-After, exact JSON, the status table and quick retries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from connectors.contract import (
    AuthError,
    ConnectorConfig,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)
from connectors.http import build_client, decode_json, parse_retry_after, send

BASE = "https://api.example.test"


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_json_numbers_with_fractions_become_decimals() -> None:
    assert decode_json(b'{"price": 19.99, "qty": 2}') == {"price": Decimal("19.99"), "qty": 2}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (422, PermanentError),
        (400, PermanentError),
    ],
)
def test_status_table(status: int, error: type[Exception]) -> None:
    with (
        respx.mock(base_url=BASE) as mock,
        build_client(ConnectorConfig(), base_url=BASE) as client,
    ):
        mock.get("/x").respond(status, json={"error": "nope"})
        with pytest.raises(error):
            send(client, "GET", "/x", marketplace="test")


def test_429_carries_retry_after_and_is_not_retried_inline() -> None:
    with (
        respx.mock(base_url=BASE) as mock,
        build_client(ConnectorConfig(), base_url=BASE) as client,
    ):
        route = mock.get("/x").respond(429, headers={"Retry-After": "12"})
        with pytest.raises(RateLimited) as caught:
            send(client, "GET", "/x", marketplace="test", sleep=lambda _s: None)
    assert caught.value.retry_after == 12.0
    assert route.call_count == 1


def test_a_quick_503_is_retried_then_succeeds() -> None:
    slept: list[float] = []
    with (
        respx.mock(base_url=BASE) as mock,
        build_client(ConnectorConfig(), base_url=BASE) as client,
    ):
        route = mock.get("/x")
        route.side_effect = [httpx.Response(503), httpx.Response(200, json={"ok": True})]
        response = send(client, "GET", "/x", marketplace="test", sleep=slept.append)
    assert response.json() == {"ok": True}
    assert route.call_count == 2
    assert len(slept) == 1


def test_a_long_retry_after_leaves_the_thread_at_once() -> None:
    with (
        respx.mock(base_url=BASE) as mock,
        build_client(ConnectorConfig(), base_url=BASE) as client,
    ):
        route = mock.get("/x").respond(503, headers={"Retry-After": "120"})
        with pytest.raises(TransientError) as caught:
            send(client, "GET", "/x", marketplace="test", sleep=lambda _s: None)
    assert caught.value.retry_after == 120.0
    assert route.call_count == 1


def test_timeouts_become_transient_errors_after_quick_retries() -> None:
    with (
        respx.mock(base_url=BASE) as mock,
        build_client(ConnectorConfig(), base_url=BASE) as client,
    ):
        route = mock.get("/x").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(TransientError, match="timed out"):
            send(client, "GET", "/x", marketplace="test", sleep=lambda _s: None)
    assert route.call_count == 3
