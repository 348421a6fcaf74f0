"""Test wiring: every storage and cache test runs on the embedded default and on the real services.

Real services come from ``HUB_TEST_DATABASE_URL`` / ``HUB_TEST_REDIS_URL``. A missing service
skips its tests with the reason, unless ``HUB_TEST_REQUIRE_SERVICES=1`` (CI), where it fails them.
Each run isolates itself: its own PostgreSQL schema and its own Redis key prefix (never FLUSHDB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

import sync.infrastructure.tables  # noqa: F401  (truncation covers the sync tables)
from hub.bootstrap import Container, bootstrap
from hub.infrastructure.migrations import upgrade
from hub.infrastructure.tables import Base
from hub.settings import Settings

DATABASE_URL = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("HUB_TEST_REQUIRE_SERVICES") == "1"
RUN_ID = uuid.uuid4().hex[:10]
ADMIN_KEY = "test-admin-key-" + RUN_ID
SECRET_KEY = Fernet.generate_key().decode()


def service_unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; HUB_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A migrated schema of our own on the shared server, dropped at the end of the run."""
    schema = f"hub_test_{RUN_ID}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    try:
        admin = create_engine(DATABASE_URL, connect_args={"connect_timeout": 3})
        with admin.begin() as db:
            db.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        service_unavailable(f"PostgreSQL at {DATABASE_URL}", error)
    settings = Settings(database_url=DATABASE_URL, db_schema=schema, secret_keys=SECRET_KEY)
    container = bootstrap(settings)
    upgrade(container.engine, schema=schema)
    container.close()
    yield schema
    with admin.begin() as db:
        db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    from redis import Redis

    try:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as error:
        service_unavailable(f"Redis at {REDIS_URL}", error)
    return REDIS_URL


def redis_prefix() -> str:
    return f"hubtest:{RUN_ID}:{uuid.uuid4().hex[:8]}:"


def delete_prefix(url: str, prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass(frozen=True)
class Backend:
    name: str
    settings: Settings


def _truncate_all(container: Container) -> None:
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with container.engine.begin() as db:
        db.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["embedded", "services"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Embedded: SQLite file + in-process cache. Services: PostgreSQL schema + Redis prefix."""
    if request.param == "embedded":
        yield embedded_backend(tmp_path)
        return
    yield from services_backend(request)


def embedded_backend(tmp_path: Path) -> Backend:
    settings = Settings(
        data_dir=tmp_path / "var",
        admin_api_key=ADMIN_KEY,
        allow_private_urls=True,  # the sandboxes listen on loopback
    )
    container = bootstrap(settings)
    upgrade(container.engine)
    container.close()
    return Backend("embedded", settings)


def services_backend(request: pytest.FixtureRequest, **extra: object) -> Iterator[Backend]:
    """PostgreSQL schema + Redis prefix of this test, emptied afterwards; ``extra`` settings."""
    schema = request.getfixturevalue("postgres_schema")
    url = request.getfixturevalue("redis_url")
    prefix = redis_prefix()
    settings = Settings(
        database_url=DATABASE_URL,
        db_schema=schema,
        cache_url=url,
        cache_key_prefix=prefix,
        secret_keys=SECRET_KEY,
        admin_api_key=ADMIN_KEY,
        db_pool_size=5,
        db_max_overflow=10,
        allow_private_urls=True,  # the sandboxes listen on loopback
        **extra,  # type: ignore[arg-type]
    )
    yield Backend("services", settings)
    container = bootstrap(settings)
    _truncate_all(container)
    container.close()
    delete_prefix(url, prefix)


@pytest.fixture
def container(backend: Backend) -> Iterator[Container]:
    built = bootstrap(backend.settings)
    yield built
    built.close()
