"""Sellers and API keys on SQL."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from hub.domain.sellers import ApiKey, Seller
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import ApiKeyRow, SellerRow, table_of

SELLERS = table_of(SellerRow)
API_KEYS = table_of(ApiKeyRow)


class SqlSellerRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add(self, seller: Seller) -> Seller:
        now = utcnow()
        seller.id = self._db.execute(
            insert(SELLERS).values(name=seller.name, created_at=now).returning(SELLERS.c.id)
        ).scalar_one()
        seller.created_at = now
        return seller

    def get(self, seller_id: int) -> Seller | None:
        row = self._db.execute(select(SELLERS).where(SELLERS.c.id == seller_id)).first()
        return Seller(row.id, row.name, row.created_at) if row else None

    def list(self) -> list[Seller]:
        rows = self._db.execute(select(SELLERS).order_by(SELLERS.c.id))
        return [Seller(row.id, row.name, row.created_at) for row in rows]

    def add_api_key(self, key: ApiKey) -> ApiKey:
        now = utcnow()
        key.id = self._db.execute(
            insert(API_KEYS)
            .values(
                seller_id=key.seller_id, prefix=key.prefix, key_hash=key.key_hash, created_at=now
            )
            .returning(API_KEYS.c.id)
        ).scalar_one()
        key.created_at = now
        return key

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._db.execute(select(API_KEYS).where(API_KEYS.c.key_hash == key_hash)).first()
        if row is None:
            return None
        return ApiKey(
            row.id, row.seller_id, row.prefix, row.key_hash, row.created_at, row.revoked_at
        )
