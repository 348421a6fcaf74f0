"""While PostgreSQL is away the API answers 503 ``unavailable`` with ``Retry-After`` (JSON, no
traceback per request), and 200 again once it is back.

PostgreSQL is reached through a loopback proxy of the test (``tests.support.tcp_proxy``):
``cut`` resets the hub's pooled connections and refuses (or black-holes) new ones, as a stopped
(or partitioned) server would. Short timeouts through the settings keep each test a few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub.api import health
from hub.api.app import create_app
from hub.bootstrap import Container, bootstrap
from tests.conftest import ADMIN_KEY, DATABASE_URL, Backend, services_backend
from tests.factories import World
from tests.support.tcp_proxy import CutMode, TcpProxy

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

CONNECT_TIMEOUT = 2  # db_connect_timeout_seconds (libpq's minimum)
RETRY = 1.5  # outage_retry_seconds: Retry-After rounds it up to 2
READINESS_TIMEOUT = 1.0
BACK_WITHIN = 10.0
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def db_proxy(postgres_schema: str) -> Iterator[tuple[TcpProxy, str]]:
    with TcpProxy.to_url(DATABASE_URL, 5432, name="proxy-postgresql") as proxy:
        yield proxy, proxy.url(DATABASE_URL)


@pytest.fixture
def container(
    request: pytest.FixtureRequest, db_proxy: tuple[TcpProxy, str]
) -> Iterator[Container]:
    """The services backend with its database reached through the proxy (same schema, so the
    backend's own clean-up, over a direct connection, still empties it)."""
    backends: Iterator[Backend] = services_backend(
        request,
        db_connect_timeout_seconds=CONNECT_TIMEOUT,
        db_pool_timeout_seconds=1.0,
        outage_retry_seconds=RETRY,
        readiness_timeout_seconds=READINESS_TIMEOUT,
    )
    backend = next(backends)
    built = bootstrap(backend.settings.model_copy(update={"database_url": db_proxy[1]}))
    try:
        yield built
    finally:
        built.close()
        next(backends, None)


def test_engine_connections_carry_the_outage_options(container: Container) -> None:
    with container.engine.connect() as db:
        raw = db.connection.dbapi_connection
        assert raw is not None
        found = raw.info.get_parameters()  # type: ignore[attr-defined]
    assert found["connect_timeout"] == str(CONNECT_TIMEOUT)
    assert found["keepalives"] == "1"
    assert (
        int(found["keepalives_idle"])
        + int(found["keepalives_interval"]) * int(found["keepalives_count"])
        <= 20
    )
    assert container.engine.pool.timeout() == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_api_answers_503_with_retry_after_while_postgresql_is_away_then_200(
    container: Container,
    db_proxy: tuple[TcpProxy, str],
    caplog: pytest.LogCaptureFixture,
    mode: CutMode,
) -> None:
    proxy, _ = db_proxy
    caplog.set_level(logging.WARNING)
    world = World(container)
    headers = {"Authorization": f"Bearer {world.api_key}"}
    with TestClient(create_app(container=container)) as client:
        assert client.get("/orders", headers=headers).status_code == 200

        proxy.cut(mode)
        answers = []
        for _ in range(3 if mode == "refuse" else 1):  # a black hole costs connect_timeout each
            started = time.monotonic()
            answers.append((client.get("/orders", headers=headers), time.monotonic() - started))
        write = client.post("/sellers", json={"name": "During"}, headers=ADMIN)
        for answer, took in [*answers, (write, 0.0)]:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "2"
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["error"]["code"] == "unavailable"
            assert set(answer.json()["error"]) >= {"code", "message"}
            assert took < CONNECT_TIMEOUT + 2.0, "bounded by connect_timeout"

        time.sleep(health.CHECK_CACHE_SECONDS)  # past /readyz's cached answer
        started = time.monotonic()
        ready = client.get("/readyz")
        assert time.monotonic() - started < READINESS_TIMEOUT + 1.0
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["checks"]["database"].startswith("failed")

        proxy.restore()
        deadline = time.monotonic() + BACK_WITHIN
        while (status := client.get("/orders", headers=headers).status_code) != 200:
            assert status == 503
            assert time.monotonic() < deadline, "the API did not answer 200 again"
            time.sleep(0.1)

    outage = [r for r in caplog.records if r.getMessage().startswith("service outage:")]
    assert len(outage) == 1, "one warning per outage, not per request"
    assert getattr(outage[0], "service", None) == "database"
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("hub.api"))


def test_a_real_database_error_is_not_an_outage(container: Container) -> None:
    """A constraint or SQL error still fails as before: only outages become 503."""
    app = create_app(container=container)

    @app.get("/broken-for-test")
    def broken() -> None:
        with container.engine.connect() as db:
            db.execute(text("SELECT * FROM no_such_table_for_outage_tests"))

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/broken-for-test").status_code == 500
