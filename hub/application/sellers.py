"""Sellers and their API keys. Keys are shown once and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from hub.domain.errors import InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import ApiKey, Principal, Seller

KEY_PREFIX = "hub_"
KEY_RANDOM_BYTES = 32
VISIBLE_PREFIX_CHARS = 12


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    seller_id: int
    key: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"IssuedKey(seller_id={self.seller_id}, key='{self.key[:VISIBLE_PREFIX_CHARS]}…')"


def create_seller(uow: UnitOfWork, name: str) -> tuple[Seller, IssuedKey]:
    if not name.strip():
        raise InvalidInput("a seller needs a name")
    seller = uow.sellers.add(Seller(id=None, name=name.strip()))
    assert seller.id is not None
    return seller, issue_api_key(uow, seller.id)


def issue_api_key(uow: UnitOfWork, seller_id: int) -> IssuedKey:
    if uow.sellers.get(seller_id) is None:
        raise NotFound(f"seller {seller_id} does not exist")
    raw = KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    uow.sellers.add_api_key(
        ApiKey(
            id=None,
            seller_id=seller_id,
            prefix=raw[:VISIBLE_PREFIX_CHARS],
            key_hash=hash_api_key(raw),
        )
    )
    return IssuedKey(seller_id=seller_id, key=raw)


def principal_for_key(uow: UnitOfWork, key: str, *, hashed: bool = False) -> Principal | None:
    """The seller a key belongs to, or None for an unknown or revoked key."""
    found = uow.sellers.find_api_key(key if hashed else hash_api_key(key))
    if found is None or found.revoked_at is not None:
        return None
    return Principal(seller_id=found.seller_id)
