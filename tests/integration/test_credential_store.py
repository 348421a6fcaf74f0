"""Rotating tokens are refreshed once, under a per-shop lock, in their own commit."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from connectors.contract import AuthError, ShopContext
from hub.bootstrap import Container
from hub.domain.shops import ShopStatus
from sync.infrastructure.credentials import SqlCredentialStore
from tests.factories import World


def context(world: World) -> ShopContext:
    return ShopContext(shop_id=world.shop_id, external_id="acme", credentials={})


def stored_credentials(container: Container, shop_id: int) -> tuple[dict[str, Any], ShopStatus]:
    with container.uow() as uow:
        shop = uow.shops.get(shop_id)
    assert shop is not None
    return shop.credentials, shop.status


def test_a_refresh_is_committed_and_a_second_caller_reuses_it(container: Container) -> None:
    world = World(container)  # credentials {"access_token": "shpat_secret"}
    store = SqlCredentialStore(container)
    calls: list[Mapping[str, Any]] = []

    def exchange(current: Mapping[str, Any]) -> Mapping[str, Any]:
        calls.append(dict(current))
        return {"access_token": "new-access", "refresh_token": "new-refresh"}

    fresh = store.refresh(context(world), "shpat_secret", exchange)
    assert fresh["access_token"] == "new-access"
    assert stored_credentials(container, world.shop_id)[0]["refresh_token"] == "new-refresh"
    # A worker that still holds the old token finds the new pair and exchanges nothing.
    again = store.refresh(context(world), "shpat_secret", exchange)
    assert again["access_token"] == "new-access"
    assert len(calls) == 1


def test_concurrent_refreshes_exchange_the_refresh_token_once(container: Container) -> None:
    world = World(container)
    store = SqlCredentialStore(container)
    exchanges = 0
    barrier = threading.Barrier(3)

    def exchange(_current: Mapping[str, Any]) -> Mapping[str, Any]:
        nonlocal exchanges
        exchanges += 1
        return {"access_token": f"rotated-{exchanges}"}

    def refresh() -> None:
        barrier.wait(5)
        store.refresh(context(world), "shpat_secret", exchange)

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert exchanges == 1
    assert stored_credentials(container, world.shop_id)[0]["access_token"] == "rotated-1"


def test_a_refused_refresh_marks_the_shop_auth_failed(container: Container) -> None:
    world = World(container)

    def refuse(_current: Mapping[str, Any]) -> Mapping[str, Any]:
        raise AuthError("invalid_grant")

    with pytest.raises(AuthError):
        SqlCredentialStore(container).refresh(context(world), "shpat_secret", refuse)
    credentials, status = stored_credentials(container, world.shop_id)
    assert status is ShopStatus.AUTH_FAILED
    assert credentials["access_token"] == "shpat_secret"
