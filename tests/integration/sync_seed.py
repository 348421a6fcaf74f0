"""Rows of the sync engine's tables written directly, at chosen times, for the tests of what reads
and prunes them (metrics, retention)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert

from hub.application import shops
from hub.bootstrap import Container
from hub.domain.shops import Marketplace
from hub.infrastructure.outbound import OPERATIONS, OUTBOX, TRIGGERS
from sync.infrastructure.events import EVENTS
from sync.infrastructure.operations import ATTEMPTS
from tests.factories import World

_keys = itertools.count(1)


class SyncSeed:
    """Two shops of one seller, and empty sync tables (creating shops queues work)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.world = world = World(container, bind=False)
        self.shop_a = world.shop_id
        with container.uow() as uow:
            other = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=world.seller_id,
                    marketplace=Marketplace.ETSY,
                    external_id="12345",
                    name="Other",
                    credentials={"access_token": "etsy_secret"},
                ),
                world.principal,
            )
            uow.commit()
        assert other.id is not None
        self.shop_b = other.id
        with container.engine.begin() as db:
            for table in (ATTEMPTS, OPERATIONS, TRIGGERS, OUTBOX, EVENTS):
                db.execute(delete(table))

    def _insert(self, table: Any, **values: Any) -> int:
        with self.container.engine.begin() as db:
            new_id: int = db.execute(
                insert(table).values(**values).returning(table.c.id)
            ).scalar_one()
        return new_id

    def outbox(
        self, created_at: datetime, published_at: datetime | None = None, queue: str = "stock"
    ) -> int:
        return self._insert(
            OUTBOX,
            actor="stock.push",
            queue=queue,
            payload={"shop_id": self.shop_a},
            delay_ms=0,
            created_at=created_at,
            published_at=published_at,
        )

    def operation(
        self, kind: str, status: str, created_at: datetime, shop_id: int | None = None
    ) -> int:
        return self._insert(
            OPERATIONS,
            kind=kind,
            shop_id=shop_id,
            key=f"test:{next(_keys)}",
            status=status,
            payload={},
            attempts=0,
            created_at=created_at,
            updated_at=created_at,
        )

    def attempt(self, operation_id: int, created_at: datetime) -> int:
        return self._insert(
            ATTEMPTS,
            operation_id=operation_id,
            status="failed",
            duration_ms=5,
            error=None,
            created_at=created_at,
        )

    def trigger(self, kind: str, shop_id: int, due_at: datetime) -> None:
        with self.container.engine.begin() as db:
            db.execute(
                insert(TRIGGERS).values(
                    kind=kind, shop_id=shop_id, due_at=due_at, created_at=due_at
                )
            )

    def event(
        self,
        status: str,
        received_at: datetime,
        handled_at: datetime | None = None,
        shop_id: int | None = None,
    ) -> int:
        return self._insert(
            EVENTS,
            marketplace="shopify",
            event_key=f"event-{next(_keys)}",
            shop_id=shop_id,
            topic="orders/updated",
            resource_id="1",
            body=b"{}",
            status=status,
            reason=None,
            attempts=0,
            received_at=received_at,
            handled_at=handled_at,
        )

    def count(self, table: Any) -> int:
        from sqlalchemy import func, select

        with self.container.engine.connect() as db:
            found: int = db.execute(select(func.count()).select_from(table)).scalar_one()
        return found
