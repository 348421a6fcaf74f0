"""/readyz names the broker when one is configured and says 503 while it is away, refused or
black-holed, within its check timeout; it is ready again once the broker answers.

The hub reaches RabbitMQ through a loopback proxy of this test (no one else's connections are
touched); the database and cache are the session's PostgreSQL schema and a Redis prefix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.api import health
from hub.api.app import create_app
from hub.bootstrap import bootstrap
from tests.conftest import Backend, services_backend
from tests.e2e.rabbitmq_support import require_rabbitmq
from tests.support.tcp_proxy import CutMode, TcpProxy

pytestmark = pytest.mark.services


@pytest.fixture
def broker_proxy() -> Iterator[tuple[TcpProxy, str]]:
    url = require_rabbitmq()
    with TcpProxy.to_url(url, 5672, name="proxy-rabbitmq") as p:
        yield p, p.url(url)


@pytest.fixture
def services(
    request: pytest.FixtureRequest, broker_proxy: tuple[TcpProxy, str]
) -> Iterator[Backend]:
    yield from services_backend(request, broker_url=broker_proxy[1])


def ready(client: TestClient) -> tuple[int, dict[str, str], float]:
    time.sleep(health.CHECK_CACHE_SECONDS)  # past the cached answer
    started = time.monotonic()
    answer = client.get("/readyz")
    return answer.status_code, answer.json()["checks"], time.monotonic() - started


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_readyz_checks_the_broker_and_says_503_in_time_while_it_is_away(
    services: Backend, broker_proxy: tuple[TcpProxy, str], mode: CutMode
) -> None:
    proxy, _ = broker_proxy
    container = bootstrap(services.settings)
    try:
        with TestClient(create_app(container=container)) as client:
            status, checks, _ = ready(client)
            assert (status, checks) == (200, {"database": "ok", "cache": "ok", "broker": "ok"})

            proxy.cut(mode)
            status, checks, took = ready(client)
            assert status == 503
            assert checks["broker"].startswith("failed"), checks
            assert checks["database"] == checks["cache"] == "ok"
            assert took < health.CHECK_TIMEOUT_SECONDS + 1.0

            proxy.restore()
            deadline = time.monotonic() + 10
            while (status := ready(client)[0]) != 200 and time.monotonic() < deadline:
                pass
            assert status == 200
    finally:
        container.close()


def test_readyz_probes_each_dependency_at_most_once_a_second(services: Backend) -> None:
    container = bootstrap(services.settings)
    calls: list[float] = []
    original = container.check_database

    def counted() -> None:
        calls.append(time.monotonic())
        original()

    container.check_database = counted  # type: ignore[method-assign]
    try:
        with TestClient(create_app(container=container)) as client:
            started = time.monotonic()
            for _ in range(20):
                assert client.get("/readyz").status_code == 200
            elapsed = time.monotonic() - started
        assert 1 <= len(calls) <= 1 + int(elapsed / health.CHECK_CACHE_SECONDS)
    finally:
        container.close()
