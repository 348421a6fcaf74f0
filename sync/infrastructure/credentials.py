"""Rotating OAuth tokens refreshed exactly once, under a per-shop lock, in their own commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.contract import AuthError, ShopContext
from hub.bootstrap import Container
from hub.domain.shops import ShopStatus


class SqlCredentialStore:
    def __init__(self, container: Container) -> None:
        self._container = container

    def __repr__(self) -> str:
        return "SqlCredentialStore()"

    def refresh(
        self,
        shop: ShopContext,
        stale_access_token: str | None,
        exchange: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> Mapping[str, Any]:
        with self._container.uow() as uow:
            uow.lock(f"shop-credentials:{shop.shop_id}")
            stored = uow.shops.get(shop.shop_id)
            if stored is None:
                raise AuthError(f"shop {shop.shop_id} no longer exists")
            if stored.credentials.get("access_token") != stale_access_token:
                return dict(stored.credentials)  # another worker refreshed it meanwhile
            try:
                fresh = exchange(stored.credentials)
            except AuthError:
                stored.status = ShopStatus.AUTH_FAILED
                uow.shops.save(stored)
                uow.commit()
                raise
            stored.credentials = {**stored.credentials, **fresh}
            uow.shops.save(stored)
            uow.commit()
            return dict(stored.credentials)
