"""The worker's per-process shop cache: reused within its time, dropped when a worker learns the
shop changed, and reloaded afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.ratelimit import InProcessRateLimiter
from hub.bootstrap import bootstrap
from hub.domain.shops import ShopStatus
from hub.settings import Settings
from sync.worker.runtime import SyncRuntime
from tests.conftest import Backend
from tests.factories import World


def runtime_for(settings: Settings) -> SyncRuntime:
    return SyncRuntime(bootstrap(settings), InProcessRateLimiter(), lambda message: None)


@pytest.fixture
def world(backend: Backend) -> Iterator[World]:
    container = bootstrap(backend.settings)
    yield World(container, bind=False)
    container.close()


def pause(world: World) -> None:
    with world.container.uow() as uow:
        shop = uow.shops.get(world.shop_id)
        assert shop is not None
        shop.status = ShopStatus.PAUSED
        uow.shops.save(shop)
        uow.commit()


def test_a_cached_shop_is_reused_until_forgotten(backend: Backend, world: World) -> None:
    runtime = runtime_for(backend.settings.model_copy(update={"worker_shop_cache_seconds": 60}))
    try:
        first = runtime.shop(world.shop_id)
        assert first is not None
        assert first.status is ShopStatus.ACTIVE
        pause(world)
        assert runtime.shop(world.shop_id) is first  # within its time: no database read
        runtime.forget_shop(world.shop_id)
        reloaded = runtime.shop(world.shop_id)
        assert reloaded is not None
        assert reloaded.status is ShopStatus.PAUSED
    finally:
        runtime.container.close()


def test_a_zero_cache_time_reads_the_shop_every_time(backend: Backend, world: World) -> None:
    runtime = runtime_for(backend.settings.model_copy(update={"worker_shop_cache_seconds": 0}))
    try:
        assert runtime.shop(world.shop_id) is not None
        pause(world)
        reloaded = runtime.shop(world.shop_id)
        assert reloaded is not None
        assert reloaded.status is ShopStatus.PAUSED
        assert runtime.shop(10_000) is None
    finally:
        runtime.container.close()
