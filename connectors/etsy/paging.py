"""Paging Etsy receipts by time, not by offset.

``getShopReceipts`` sorted ``sort_on=updated&sort_order=asc`` pages with ``limit``/``offset``,
and an offset is a position in a list that moves: when a receipt changes mid-scan it jumps to
the end and every later receipt shifts down one place, so the next offset skips one. Each page
therefore starts again at the newest ``update_timestamp`` seen (``min_last_modified``), and an
offset is used only to step through one timestamp whose receipts fill whole pages; there the
step overlaps the previous page a little so a shift cannot skip one. Receipts already returned
at the cursor's timestamp are remembered by id and dropped when read again.

The cursor is opaque to the caller: compact JSON of ``{since, offset, seen}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.etsy.mappers import receipt_id, updated_at

CURSOR_VERSION = 1


@dataclass(frozen=True)
class OrderCursor:
    since: int  # min_last_modified, epoch seconds
    offset: int = 0  # position within receipts updated exactly at ``since``
    seen: frozenset[int] = field(default_factory=frozenset)  # returned, updated at ``since``

    def encode(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "since": self.since,
                "offset": self.offset,
                "seen": sorted(self.seen),
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> OrderCursor:
        """Raises ``ValueError`` for anything this module did not write."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError("not an Etsy order cursor") from error
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("not an Etsy order cursor")
        since: Any = data.get("since")
        offset: Any = data.get("offset")
        seen: Any = data.get("seen")
        if not isinstance(seen, list) or not all(_non_negative(x) for x in (since, offset, *seen)):
            raise ValueError("a malformed Etsy order cursor")
        return cls(since, offset, frozenset(seen))


def _non_negative(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def overlap(page_size: int) -> int:
    """How many receipts a step within one timestamp re-reads: a tenth of a page, at least
    one (pages of one receipt cannot overlap and still move)."""
    return min(max(1, page_size // 10), page_size - 1)


def unseen(cursor: OrderCursor, receipts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The page's receipts minus those already returned at the cursor's timestamp (and minus
    repeats within the page)."""
    fresh: list[Mapping[str, Any]] = []
    ids: set[int] = set()
    for receipt in receipts:
        number = receipt_id(receipt)
        if number in ids or (number in cursor.seen and updated_at(receipt) == cursor.since):
            continue
        ids.add(number)
        fresh.append(receipt)
    return fresh


def advance(
    cursor: OrderCursor, receipts: Sequence[Mapping[str, Any]], page_size: int
) -> OrderCursor | None:
    """The cursor after a page of ``receipts`` (all of it, duplicates included); None when the
    page was not full, so the scan is complete."""
    if len(receipts) < page_size:
        return None
    newest = max(updated_at(receipt) for receipt in receipts)
    at_newest = frozenset(receipt_id(r) for r in receipts if updated_at(r) == newest)
    if newest > cursor.since:
        return OrderCursor(newest, 0, at_newest)
    step = max(1, len(receipts) - overlap(page_size))
    return OrderCursor(cursor.since, cursor.offset + step, cursor.seen | at_newest)
