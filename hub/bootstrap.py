"""The composition root: settings in, a container of wired adapters out.

The API (in its lifespan), each worker process (after fork) and the CLI call ``bootstrap`` once.
Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from hub.application.reads import CachedReader
from hub.domain.ports import CredentialCipher, ReadCache
from hub.infrastructure.cache import MemoryReadCache, NullReadCache, RedisReadCache
from hub.infrastructure.crypto import (
    CredentialKeyError,
    FernetCredentialCipher,
    embedded_key,
    parse_keys,
)
from hub.infrastructure.db import create_db_engine, is_deadlock_victim, read_only
from hub.infrastructure.logs import register_settings_secrets
from hub.infrastructure.read_models import SqlReadModel
from hub.infrastructure.uow import SqlUnitOfWork
from hub.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Container:
    settings: Settings
    engine: Engine
    cipher: CredentialCipher
    cache: ReadCache
    read_model: SqlReadModel
    reader: CachedReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = CachedReader(self.cache, enabled=self.settings.cache_enabled)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            self.cipher,
            self.cache,
            push_debounce_ms=self.settings.push_debounce_ms,
        )

    def write(self, work: Callable[[SqlUnitOfWork], T], *, attempts: int = 5) -> T:
        """``work`` in one unit of work, committed; run again when PostgreSQL made it a
        deadlock's victim (a write that touches many bindings meets pushes and imports taking
        the same rows). ``work`` must not commit, and must be safe to run again."""
        for attempt in range(1, attempts + 1):
            try:
                with self.uow() as uow:
                    result = work(uow)
                    uow.commit()
                    return result
            except OperationalError as error:
                if not is_deadlock_victim(error) or attempt == attempts:
                    raise
                log.warning("deadlock victim, running the write again", extra={"attempt": attempt})
        raise AssertionError("unreachable")

    def check_database(self) -> None:
        with read_only(self.engine).connect() as db:
            db.execute(text("SELECT 1"))

    def close(self) -> None:
        self.cache.close()
        self.engine.dispose()


def build_cipher(settings: Settings) -> CredentialCipher:
    if settings.secret_keys is not None and settings.secret_keys.get_secret_value().strip():
        return FernetCredentialCipher(parse_keys(settings.secret_keys.get_secret_value()))
    if not settings.is_sqlite:
        raise CredentialKeyError(
            "HUB_SECRET_KEYS is required with PostgreSQL: shop credentials are encrypted with it "
            "(generate one with `hub keys generate`)"
        )
    return FernetCredentialCipher([embedded_key(settings.data_dir)])


def media_url_secret(settings: Settings) -> bytes:
    """The signed image URLs' key: configured, or derived from the credential keys so every
    process of a deployment agrees without one more secret to manage. Derived from the oldest
    key: rotating in a new credential key (put first) keeps handed-out URLs valid; set
    HUB_MEDIA_URL_SECRET to decouple the two entirely."""
    if settings.media_url_secret is not None:
        return settings.media_url_secret.get_secret_value().encode()
    if settings.secret_keys is not None and settings.secret_keys.get_secret_value().strip():
        root = parse_keys(settings.secret_keys.get_secret_value())[-1]
    else:
        root = embedded_key(settings.data_dir)
    return hmac.new(root, b"hub media url signing", hashlib.sha256).digest()


def build_cache(settings: Settings) -> ReadCache:
    if not settings.cache_enabled:
        return NullReadCache()
    if settings.cache_url:
        return RedisReadCache(
            settings.cache_url,
            prefix=settings.cache_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            tombstone_ttl_seconds=settings.cache_tombstone_ttl_seconds,
            timeout_seconds=settings.cache_timeout_seconds,
            retry_seconds=settings.outage_retry_seconds,
        )
    return MemoryReadCache(
        ttl_seconds=settings.cache_ttl_seconds,
        tombstone_ttl_seconds=settings.cache_tombstone_ttl_seconds,
    )


def bootstrap(settings: Settings | None = None, *, cache: ReadCache | None = None) -> Container:
    settings = settings or Settings()
    register_settings_secrets(settings)  # logs mask the app's secrets by value
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(
        settings.resolved_database_url,
        schema=settings.db_schema,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        busy_timeout_ms=settings.db_busy_timeout_ms,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
    )
    return Container(
        settings=settings,
        engine=engine,
        cipher=build_cipher(settings),
        cache=cache or build_cache(settings),
        read_model=SqlReadModel(read_only(engine)),
    )
