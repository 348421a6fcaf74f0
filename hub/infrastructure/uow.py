"""The SQL unit of work: one connection, one transaction, repositories bound to it."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from hub.domain.errors import Conflict
from hub.domain.ports import CredentialCipher, ReadCache
from hub.infrastructure.bindings import SqlBindingRepository
from hub.infrastructure.catalog import SqlCatalogRepository
from hub.infrastructure.onboarding import SqlAuthorizationRepository, SqlShopConnectionRepository
from hub.infrastructure.orders import SqlOrderRepository
from hub.infrastructure.outbound import SqlOutboundRequests
from hub.infrastructure.pricing import SqlPriceRuleRepository
from hub.infrastructure.sellers import SqlSellerRepository
from hub.infrastructure.shops import SqlShopRepository
from hub.infrastructure.stock import SqlStockRepository

log = logging.getLogger(__name__)


class SqlUnitOfWork:
    sellers: SqlSellerRepository
    shops: SqlShopRepository
    catalog: SqlCatalogRepository
    stock: SqlStockRepository
    bindings: SqlBindingRepository
    orders: SqlOrderRepository
    outbound: SqlOutboundRequests
    authorizations: SqlAuthorizationRepository
    connections: SqlShopConnectionRepository
    prices: SqlPriceRuleRepository

    def __init__(
        self,
        engine: Engine,
        cipher: CredentialCipher,
        cache: ReadCache,
        *,
        push_debounce_ms: int = 300,
    ) -> None:
        self._engine = engine
        self._push_debounce_ms = push_debounce_ms
        self._cipher = cipher
        self._cache = cache
        self._connection: Connection | None = None
        self._changes: dict[str, int] = {}
        self._committed = False

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "use the unit of work as a context manager"
        return self._connection

    def __enter__(self) -> Self:
        self._connection = self._engine.connect()
        self._connection.begin()
        db = self._connection
        self.sellers = SqlSellerRepository(db)
        self.shops = SqlShopRepository(db, self._cipher)
        self.catalog = SqlCatalogRepository(db)
        self.stock = SqlStockRepository(db)
        self.bindings = SqlBindingRepository(db, push_debounce_ms=self._push_debounce_ms)
        self.orders = SqlOrderRepository(db)
        self.outbound = SqlOutboundRequests(db)
        self.authorizations = SqlAuthorizationRepository(db, self._cipher)
        self.connections = SqlShopConnectionRepository(db)
        self.prices = SqlPriceRuleRepository(db)
        self._changes = {}
        self._committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            if not self._committed:
                connection.rollback()
            connection.close()
        if isinstance(exc, IntegrityError):
            raise Conflict(f"the change conflicts with stored data: {_constraint(exc)}") from exc

    def commit(self) -> None:
        self.connection.commit()
        self._committed = True
        for key, version in self._changes.items():
            try:
                self._cache.tombstone(key, version)
            except Exception:  # the database is the truth; a cache outage must not fail a write
                log.exception("cache tombstone failed", extra={"cache_key": key})
        self._changes = {}

    def lock(self, name: str) -> None:
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name}
            )
        # SQLite: every writer already holds the database's one write lock (BEGIN IMMEDIATE).

    def changed(self, cache_key: str, version: int) -> None:
        self._changes[cache_key] = max(version, self._changes.get(cache_key, 0))


def _constraint(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    detail = getattr(diag, "message_detail", None) if diag else None
    if detail:
        return str(detail)
    return str(exc.orig).splitlines()[0] if exc.orig else "integrity error"
