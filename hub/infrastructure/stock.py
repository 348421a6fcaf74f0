"""Blanks on SQL. Counters move by atomic increments, never read-modify-write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hub.domain.catalog import Blank
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import BlankRow, table_of

BLANKS = table_of(BlankRow)
# Codes per ``IN`` list: a catalog import may name thousands, and chunks keep each statement's
# bound parameters few whatever the document's size.
CODES_PER_QUERY = 1000


class SqlStockRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add_blank(self, blank: Blank) -> Blank:
        blank.id = self._db.execute(
            insert(BLANKS)
            .values(
                code=blank.code,
                name=blank.name,
                on_hand=blank.on_hand,
                reserved=0,
                version=1,
                updated_at=utcnow(),
            )
            .returning(BLANKS.c.id)
        ).scalar_one()
        blank.version = 1
        return blank

    def get_blank(self, blank_id: int) -> Blank | None:
        row = self._db.execute(
            select(BLANKS).where(BLANKS.c.id == blank_id).with_for_update()
        ).first()
        return _blank(row) if row else None

    def existing_blank_ids(self, blank_ids: Iterable[int]) -> set[int]:
        ids = sorted(set(blank_ids))
        if not ids:
            return set()
        return set(self._db.execute(select(BLANKS.c.id).where(BLANKS.c.id.in_(ids))).scalars())

    def ids_by_code(self, codes: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(codes))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CODES_PER_QUERY):
            rows = self._db.execute(
                select(BLANKS.c.code, BLANKS.c.id).where(
                    BLANKS.c.code.in_(wanted[start : start + CODES_PER_QUERY])
                )
            )
            found.update({row.code: row.id for row in rows})
        return found

    def set_on_hand(self, blank_id: int, on_hand: int) -> None:
        self._db.execute(
            update(BLANKS)
            .where(BLANKS.c.id == blank_id)
            .values(on_hand=on_hand, version=BLANKS.c.version + 1, updated_at=utcnow())
        )

    def adjust(
        self, *, reserved: Mapping[int, int], on_hand: Mapping[int, int] | None = None
    ) -> None:
        on_hand = on_hand or {}
        now = utcnow()
        for blank_id in sorted(set(reserved) | set(on_hand)):  # one lock order: no deadlocks
            self._db.execute(
                update(BLANKS)
                .where(BLANKS.c.id == blank_id)
                .values(
                    reserved=BLANKS.c.reserved + reserved.get(blank_id, 0),
                    on_hand=BLANKS.c.on_hand + on_hand.get(blank_id, 0),
                    version=BLANKS.c.version + 1,
                    updated_at=now,
                )
            )


def _blank(row: Any) -> Blank:
    return Blank(
        id=row.id,
        code=row.code,
        name=row.name,
        on_hand=row.on_hand,
        reserved=row.reserved,
        version=row.version,
    )
