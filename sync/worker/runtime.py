"""What a worker process (or `hub run`) needs, built once per process after any fork."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from connectors import registry
from connectors.contract import MarketplaceConnector, ShopContext
from connectors.ratelimit import InProcessRateLimiter, RateLimiter
from hub.bootstrap import Container, media_url_secret
from hub.domain.shops import Shop
from imaging import render as renderer
from imaging.storage import ObjectStore
from sync.infrastructure.credentials import SqlCredentialStore
from sync.infrastructure.outbox import OutboxMessage, Publisher, add_message
from sync.infrastructure.rate_limits import RedisRateLimiter
from sync.infrastructure.storage import build_object_store


@dataclass
class SyncRuntime:
    container: Container
    limiter: RateLimiter
    send_to_broker: Callable[[OutboxMessage], None]
    _connectors: dict[str, MarketplaceConnector] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _shops: dict[int, tuple[float, Shop]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.credentials = SqlCredentialStore(self.container)
        self.publisher = Publisher(self.container.engine, self.send_to_broker)
        self._store: ObjectStore | None = None
        settings = self.container.settings
        renderer.configure(settings.max_image_pixels, settings.image_render_concurrency)

    def object_store(self) -> ObjectStore:
        """Images' storage, built on first use (a worker that never renders never connects)."""
        with self._lock:
            if self._store is None:
                self._store = build_object_store(self.container.settings)
            return self._store

    def media_url_secret(self) -> bytes:
        return media_url_secret(self.container.settings)

    def connector(self, marketplace: str) -> MarketplaceConnector:
        with self._lock:
            found = self._connectors.get(marketplace)
            if found is None:
                config = registry.config_from_settings(
                    marketplace,
                    self.container.settings,
                    rate_limiter=self.limiter,
                    credential_store=self.credentials,
                )
                found = registry.create(marketplace, config)
                self._connectors[marketplace] = found
            return found

    def shop(self, shop_id: int) -> Shop | None:
        """The shop, reused for ``worker_shop_cache_seconds``: every event would otherwise load
        and decrypt it again. Stale credentials heal themselves (a 401 makes the credential
        store read the stored ones), and a pause takes effect within the same few seconds."""
        ttl = self.container.settings.worker_shop_cache_seconds
        now = time.monotonic()
        cached = self._shops.get(shop_id)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        with self.container.uow() as uow:
            shop = uow.shops.get(shop_id)
        if shop is None:
            self._shops.pop(shop_id, None)
        elif ttl > 0:
            self._shops[shop_id] = (now, shop)
        return shop

    def forget_shop(self, shop_id: int) -> None:
        self._shops.pop(shop_id, None)

    def send(
        self, actor: str, queue: str, payload: dict[str, Any], *, delay_seconds: float = 0
    ) -> int:
        """A new message from actor code: written to the outbox, then published at once."""
        delay_ms = int(min(delay_seconds, self.container.settings.max_broker_delay_seconds) * 1000)
        with self.container.engine.begin() as db:
            message_id = add_message(db, actor, queue, payload, delay_ms=delay_ms)
        self.publisher.publish(ids=[message_id])
        return message_id

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()


def shop_context(shop: Shop) -> ShopContext:
    assert shop.id is not None
    return ShopContext(
        shop_id=shop.id,
        external_id=shop.external_id,
        credentials=shop.credentials,
        api_base_url=shop.api_base_url,
        location_id=shop.location_id,
    )


def build_limiter(container: Container) -> RateLimiter:
    settings = container.settings
    if settings.cache_url:
        return RedisRateLimiter(
            Redis.from_url(
                settings.cache_url,
                socket_timeout=settings.cache_timeout_seconds,
                socket_connect_timeout=settings.cache_timeout_seconds,
            ),
            prefix=settings.cache_key_prefix,
            max_inline_wait=settings.rate_limit_max_inline_wait,
            outage_retry_seconds=settings.outage_retry_seconds,
        )
    return InProcessRateLimiter(max_inline_wait=settings.rate_limit_max_inline_wait)
