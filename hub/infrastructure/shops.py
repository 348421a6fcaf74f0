"""Shops on SQL; credentials are encrypted on the way in and decrypted on the way out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from hub.domain.ports import CredentialCipher
from hub.domain.shops import Marketplace, Shop, ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import ShopRow, table_of

SHOPS = table_of(ShopRow)


class SqlShopRepository:
    def __init__(self, connection: Connection, cipher: CredentialCipher) -> None:
        self._db = connection
        self._cipher = cipher

    def add(self, shop: Shop) -> Shop:
        now = utcnow()
        shop.id = self._db.execute(
            insert(SHOPS)
            .values(**self._values(shop), created_at=now, updated_at=now)
            .returning(SHOPS.c.id)
        ).scalar_one()
        shop.created_at = now
        return shop

    def get(self, shop_id: int) -> Shop | None:
        row = self._db.execute(select(SHOPS).where(SHOPS.c.id == shop_id)).first()
        return self._shop(row) if row else None

    def find_by_external(self, marketplace: Marketplace, external_id: str) -> Shop | None:
        row = self._db.execute(
            select(SHOPS).where(
                SHOPS.c.marketplace == marketplace.value, SHOPS.c.external_id == external_id
            )
        ).first()
        return self._shop(row) if row else None

    def list(self, seller_id: int | None) -> list[Shop]:
        query = select(SHOPS).order_by(SHOPS.c.id)
        if seller_id is not None:
            query = query.where(SHOPS.c.seller_id == seller_id)
        return [self._shop(row) for row in self._db.execute(query)]

    def save(self, shop: Shop) -> None:
        self._db.execute(
            update(SHOPS)
            .where(SHOPS.c.id == shop.id)
            .values(**self._values(shop), updated_at=utcnow())
        )

    def _values(self, shop: Shop) -> dict[str, Any]:
        return {
            "seller_id": shop.seller_id,
            "marketplace": shop.marketplace.value,
            "external_id": shop.external_id,
            "name": shop.name,
            "status": shop.status.value,
            "stock_buffer": shop.stock_buffer,
            "max_listed_quantity": shop.max_listed_quantity,
            "api_base_url": shop.api_base_url,
            "location_id": shop.location_id,
            "credentials": self._cipher.encrypt(shop.credentials) if shop.credentials else None,
        }

    def _shop(self, row: Any) -> Shop:
        return Shop(
            id=row.id,
            seller_id=row.seller_id,
            marketplace=Marketplace(row.marketplace),
            external_id=row.external_id,
            name=row.name,
            status=ShopStatus(row.status),
            stock_buffer=row.stock_buffer,
            max_listed_quantity=row.max_listed_quantity,
            api_base_url=row.api_base_url,
            location_id=row.location_id,
            credentials=self._cipher.decrypt(row.credentials) if row.credentials else {},
            created_at=row.created_at,
        )
