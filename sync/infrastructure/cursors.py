"""Pull cursors per (shop, stream): how far the committed imports reach. Never moves back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import table_of
from sync.infrastructure.tables import SyncCursorRow

CURSORS = table_of(SyncCursorRow)


def position(db: Connection, shop_id: int, stream: str) -> datetime | None:
    row = db.execute(
        select(CURSORS.c.position).where(CURSORS.c.shop_id == shop_id, CURSORS.c.stream == stream)
    ).first()
    return row.position if row else None


def advance(db: Connection, shop_id: int, stream: str, to: datetime) -> None:
    dialect_insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    db.execute(
        dialect_insert(CURSORS)
        .values(shop_id=shop_id, stream=stream, position=to, updated_at=now)
        .on_conflict_do_nothing(index_elements=["shop_id", "stream"])
    )
    db.execute(
        update(CURSORS)
        .where(CURSORS.c.shop_id == shop_id, CURSORS.c.stream == stream, CURSORS.c.position < to)
        .values(position=to, updated_at=now)
    )
