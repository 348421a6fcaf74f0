"""Engines for SQLite (embedded) and PostgreSQL, and the column types both must agree on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, MetaData, Numeric, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Always aware UTC in Python; SQLite would otherwise hand back naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 6))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(Decimal(value)) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return plain_decimal(Decimal(str(value)))


def plain_decimal(value: Decimal) -> Decimal:
    """The same number on both databases: no trailing zeros, never an exponent."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else value


JsonDocument = JSON().with_variant(JSONB(), "postgresql")


# TCP keepalives on every PostgreSQL connection: an idle connection whose server vanished
# without a FIN/RST (a crashed host, a partition) is noticed after about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT = 19 s instead of the kernel's 2 hours.
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 3
KEEPALIVE_COUNT = 3
# Keepalives stay quiet while sent data is unacknowledged (a query sent into a black hole
# would wait for the kernel's ~15 min of retransmissions); TCP_USER_TIMEOUT bounds that case.
TCP_USER_TIMEOUT_MS = 20_000


def postgres_connect_args(connect_timeout_seconds: int = 5) -> dict[str, int]:
    """libpq options that turn a PostgreSQL outage into a prompt error rather than a hang.

    Shared by the SQLAlchemy engine and any raw psycopg pool (``kwargs=`` of
    ``psycopg_pool.AsyncConnectionPool``), so every connection of the hub fails alike.
    """
    return {
        # libpq treats values below 2 as 2; 0 would mean "wait forever".
        "connect_timeout": max(2, int(connect_timeout_seconds)),
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    }


def create_db_engine(
    url: str,
    *,
    schema: str | None = None,
    pool_size: int = 20,
    max_overflow: int = 20,
    busy_timeout_ms: int = 5000,
    connect_timeout_seconds: int = 5,
    pool_timeout_seconds: float = 10.0,
) -> Engine:
    """Build the engine for the URL; call after fork, never at import time.

    On PostgreSQL a dead or unreachable server must surface as an error within seconds (so the
    API can answer 503 and the worker can retry later) instead of holding a request and a
    pooled connection: bounded connects, keepalives, a bounded wait for a pooled connection,
    and a pre-ping that replaces connections killed by a server restart.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout_ms)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=pool_timeout_seconds,
        connect_args=postgres_connect_args(connect_timeout_seconds),
    )
    if schema:
        _set_search_path(engine, schema)
    return engine


def _set_search_path(engine: Engine, schema: str) -> None:
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"schema name {schema!r} must be letters, digits and underscores")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET search_path TO {schema}")
        dbapi_connection.commit()


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that upgrades to a write
        # fails with "database is locked" whatever the busy timeout.
        readonly = connection.get_execution_options().get("readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Engine:
    """The same pool, with transactions that do not take SQLite's write lock."""
    return engine.execution_options(readonly=True)


# PostgreSQL's deadlock_detected and serialization_failure: it aborted this transaction so
# another could go on; the same work run again goes through once the other has committed.
VICTIM_SQLSTATES = frozenset({"40P01", "40001"})


def is_deadlock_victim(error: BaseException) -> bool:
    return getattr(getattr(error, "orig", None), "sqlstate", None) in VICTIM_SQLSTATES
