"""Sellers are the tenants: each owns shops, products and API keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Seller:
    id: int | None
    name: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator (admin) or one seller's key."""

    seller_id: int | None
    is_admin: bool = False

    def can_see(self, seller_id: int) -> bool:
        return self.is_admin or self.seller_id == seller_id


@dataclass
class ApiKey:
    id: int | None
    seller_id: int
    prefix: str
    key_hash: str = field(repr=False)
    created_at: datetime | None = None
    revoked_at: datetime | None = None
