"""Stock rules: what a variant may be listed at, and what an order line holds back.

All quantities here are plain integers so the rules stay testable without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.domain.catalog import BlankUsage


@dataclass(frozen=True)
class BlankLevel:
    on_hand: int
    reserved: int
    quantity_per_unit: int


def available_quantity(levels: Iterable[BlankLevel], *, buffer: int, maximum: int) -> int:
    """The quantity a shop should show for a variant.

    The minimum over its blanks of floor(free / quantity per unit), less the shop's buffer, never
    below 0 and never above the shop's cap. A variant with no blanks is untracked: it shows the cap.
    """
    per_blank = [(lvl.on_hand - lvl.reserved) // lvl.quantity_per_unit for lvl in levels]
    if not per_blank:
        return max(0, maximum)
    return max(0, min(min(per_blank) - buffer, maximum))


def line_reservation(*, quantity: int, fulfilled: int, paid: bool, cancelled: bool) -> int:
    """Units of the variant a line holds back: what is still to ship on a paid, live order."""
    if not paid or cancelled:
        return 0
    return max(0, quantity - fulfilled)


def blank_deltas(
    changes: Mapping[int, int], usage: Mapping[int, list[BlankUsage]]
) -> dict[int, int]:
    """Turn per-variant unit changes into per-blank unit changes, dropping zeros."""
    deltas: dict[int, int] = defaultdict(int)
    for variant_id, units in changes.items():
        for use in usage.get(variant_id, []):
            deltas[use.blank_id] += units * use.quantity_per_unit
    return {blank_id: delta for blank_id, delta in sorted(deltas.items()) if delta}
