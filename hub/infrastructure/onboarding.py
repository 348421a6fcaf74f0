"""Authorizations in flight and shop connection health on SQL.

A state is stored as its sha256 only: whoever reads the table cannot complete someone else's
authorization. The PKCE verifier is encrypted with the credential keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hub.domain.onboarding import (
    ConnectOptions,
    PendingAuthorization,
    ShopConnection,
    WebhookHealth,
)
from hub.domain.ports import CredentialCipher
from hub.domain.shops import Marketplace
from hub.infrastructure.tables import ShopAuthorizationRow, ShopConnectionRow, table_of

AUTHORIZATIONS = table_of(ShopAuthorizationRow)
CONNECTIONS = table_of(ShopConnectionRow)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class SqlAuthorizationRepository:
    def __init__(self, connection: Connection, cipher: CredentialCipher) -> None:
        self._db = connection
        self._cipher = cipher

    def add(self, pending: PendingAuthorization, state: str) -> PendingAuthorization:
        secrets = (
            self._cipher.encrypt({"code_verifier": pending.code_verifier})
            if pending.code_verifier
            else None
        )
        pending.id = self._db.execute(
            insert(AUTHORIZATIONS)
            .values(
                state_hash=state_hash(state),
                seller_id=pending.seller_id,
                marketplace=pending.marketplace.value,
                shop_hint=pending.shop_hint,
                api_base_url=pending.api_base_url,
                secrets=secrets,
                options=pending.options.as_dict(),
                created_at=pending.created_at,
                expires_at=pending.expires_at,
                used_at=None,
                shop_id=None,
            )
            .returning(AUTHORIZATIONS.c.id)
        ).scalar_one()
        return pending

    def claim(self, state: str) -> PendingAuthorization | None:
        query = select(AUTHORIZATIONS).where(AUTHORIZATIONS.c.state_hash == state_hash(state))
        if self._db.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._db.execute(query).first()
        return self._pending(row) if row else None

    def save(self, pending: PendingAuthorization) -> None:
        self._db.execute(
            update(AUTHORIZATIONS)
            .where(AUTHORIZATIONS.c.id == pending.id)
            .values(used_at=pending.used_at, shop_id=pending.shop_id)
        )

    def _pending(self, row: Any) -> PendingAuthorization:
        secrets = self._cipher.decrypt(row.secrets) if row.secrets else {}
        return PendingAuthorization(
            id=row.id,
            seller_id=row.seller_id,
            marketplace=Marketplace(row.marketplace),
            shop_hint=row.shop_hint,
            api_base_url=row.api_base_url,
            options=ConnectOptions.of(dict(row.options or {})),
            created_at=row.created_at,
            expires_at=row.expires_at,
            code_verifier=secrets.get("code_verifier"),
            used_at=row.used_at,
            shop_id=row.shop_id,
        )


class SqlShopConnectionRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def get(self, shop_id: int) -> ShopConnection:
        row = self._db.execute(select(CONNECTIONS).where(CONNECTIONS.c.shop_id == shop_id)).first()
        if row is None:
            return ShopConnection(shop_id=shop_id)
        return ShopConnection(
            shop_id=row.shop_id,
            connected_at=row.connected_at,
            scopes=tuple(filter(None, (row.scopes or "").split(","))),
            webhook_status=WebhookHealth(row.webhook_status),
            webhook_detail=row.webhook_detail,
            webhooks_checked_at=row.webhooks_checked_at,
        )

    def save(self, connection: ShopConnection) -> None:
        values = {
            "connected_at": connection.connected_at,
            "scopes": ",".join(connection.scopes) or None,
            "webhook_status": connection.webhook_status.value,
            "webhook_detail": connection.webhook_detail,
            "webhooks_checked_at": connection.webhooks_checked_at,
        }
        updated = self._db.execute(
            update(CONNECTIONS).where(CONNECTIONS.c.shop_id == connection.shop_id).values(values)
        ).rowcount
        if not updated:
            self._db.execute(insert(CONNECTIONS).values(shop_id=connection.shop_id, **values))
