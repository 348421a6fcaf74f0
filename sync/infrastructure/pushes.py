"""Push bookkeeping on SQL: triggers taken, the bindings due for a kind, and what a finished
batch changes on them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, bindparam, delete, select, update

from hub.domain.shops import PushKind, ShopStatus
from hub.domain.stock import available_quantity
from hub.infrastructure.bindings import BINDINGS, STATES, VARIANTS, SqlBindingRepository
from hub.infrastructure.outbound import OPERATIONS, PUSH_ACTORS, TRIGGERS, add_message
from hub.infrastructure.shops import SHOPS
from sync.infrastructure import operations as ops


@dataclass(frozen=True)
class DueBinding:
    binding_id: int
    listing_id: str | None
    variant_id: str | None
    inventory_item_id: str | None
    sku: str
    last_pushed_quantity: int | None
    desired_version: int
    listed_price: Decimal | None = None  # the price decided for the binding (pricing rules)
    last_pushed_price: Decimal | None = None


@dataclass(frozen=True)
class Member:
    """One binding in a batch: the version and values it carries (price: None, untouched)."""

    binding_id: int
    version: int
    quantity: int
    price: Decimal | None = None


def forgotten_pushes() -> Select[tuple[str, int]]:
    """(kind, shop) pairs whose bindings are due although nothing is queued to push them: no
    trigger and no active operation of the shop. For the scheduler's sweep.

    A change queues no trigger of its own when one exists (``ON CONFLICT DO NOTHING``, so
    imports never wait on each other for it), and a push that took that trigger a moment
    earlier cannot see the change's uncommitted version: the change is then left due with
    nothing to push it. Rare (the commit must land between the push's take and its read), but
    lost work, so the sweep queues it again; paused shops keep their due bindings on purpose.
    """
    active_operation = (
        select(OPERATIONS.c.id)
        .where(
            OPERATIONS.c.shop_id == BINDINGS.c.shop_id,
            OPERATIONS.c.status.in_((ops.QUEUED, ops.RUNNING)),
        )
        .exists()
    )
    return (
        select(STATES.c.kind, BINDINGS.c.shop_id)
        .join(BINDINGS, BINDINGS.c.id == STATES.c.binding_id)
        .join(SHOPS, SHOPS.c.id == BINDINGS.c.shop_id)
        .where(
            STATES.c.kind.in_([kind.value for kind in PUSH_ACTORS]),
            STATES.c.desired_version > STATES.c.pushed_version,
            SHOPS.c.status == ShopStatus.ACTIVE.value,
            ~active_operation,
        )
        .distinct()
    )


def take_trigger(db: Connection, kind: str, shop_id: int) -> None:
    """From here on a new change queues a new push; this one covers everything before."""
    db.execute(delete(TRIGGERS).where(TRIGGERS.c.kind == kind, TRIGGERS.c.shop_id == shop_id))


def _due_rows(
    db: Connection, shop_id: int, kind: str, columns: Sequence[ColumnElement[Any]]
) -> list[Sequence[Any]]:
    """``columns`` of the shop's bindings whose ``kind`` state wants a newer version than the
    one pushed, in binding order; each kind of push reads what its own batch needs."""
    query = (
        select(*columns)
        .select_from(BINDINGS)
        .join(STATES, STATES.c.binding_id == BINDINGS.c.id)
        .join(VARIANTS, VARIANTS.c.id == BINDINGS.c.variant_id)
        .where(
            BINDINGS.c.shop_id == shop_id,
            STATES.c.kind == kind,
            STATES.c.desired_version > STATES.c.pushed_version,
        )
        .order_by(BINDINGS.c.id)
    )
    return list(db.execute(query))


def due_bindings(db: Connection, shop_id: int, kind: str) -> list[DueBinding]:
    columns = (
        BINDINGS.c.id,
        BINDINGS.c.external_listing_id,
        BINDINGS.c.external_variant_id,
        BINDINGS.c.external_inventory_item_id,
        VARIANTS.c.sku,
        BINDINGS.c.last_pushed_quantity,
        STATES.c.desired_version,
        BINDINGS.c.listed_price,
        BINDINGS.c.last_pushed_price,
    )
    return [DueBinding(*row) for row in _due_rows(db, shop_id, kind, columns)]


def quantities(db: Connection, shop_id: int, buffer: int, maximum: int) -> dict[int, int]:
    """What the shop should show per binding, from the blanks' current levels."""
    levels = SqlBindingRepository(db).stock_levels(shop_id)
    bound = db.execute(select(BINDINGS.c.id).where(BINDINGS.c.shop_id == shop_id)).scalars()
    return {
        binding_id: available_quantity(levels.get(binding_id, []), buffer=buffer, maximum=maximum)
        for binding_id in bound
    }


def record_pushed(
    db: Connection,
    kind: str,
    members: Sequence[Member],
    *,
    debounce_ms: int,
    set_quantity: bool = True,
    set_price: bool = False,
    image_keys: list[str] | None = None,
) -> list[int]:
    """Advance each member's pushed version to the one it carried and remember its value.

    A member whose pushed version is already past the one it carried was overtaken: a newer
    value went out (or was skipped as equal) before this batch landed, so the marketplace now
    shows an older value. Those bindings get their desired version bumped again and are
    returned, so the caller queues one more push of the current value.
    """
    if not members:
        return []
    ids = sorted({member.binding_id for member in members})
    # The state rows locked in binding order, as every writer locks them (see the binding
    # repository's bump): concurrent imports and pushes queue instead of deadlocking.
    current = dict(
        db.execute(
            select(STATES.c.binding_id, STATES.c.pushed_version)
            .where(STATES.c.kind == kind, STATES.c.binding_id.in_(ids))
            .order_by(STATES.c.binding_id)
            .with_for_update()
        ).all()
    )
    members = sorted(members, key=lambda member: member.binding_id)
    winners = [m for m in members if m.binding_id in current and current[m.binding_id] < m.version]
    late = [m for m in members if m.binding_id in current and current[m.binding_id] > m.version]
    overtaken = [m.binding_id for m in late]
    if winners:
        db.execute(
            update(STATES)
            .where(STATES.c.kind == kind, STATES.c.binding_id == bindparam("b_id"))
            .values(pushed_version=bindparam("b_version")),
            [{"b_id": m.binding_id, "b_version": m.version} for m in winners],
        )
    # What the marketplace shows now: the winners' values, and the older values of a batch
    # that landed late (remembered, or the push of the current value would be skipped as
    # equal to the newer one sent before).
    landed = winners + late
    if landed and image_keys is not None:
        db.execute(
            update(BINDINGS)
            .where(BINDINGS.c.id.in_([m.binding_id for m in landed]))
            .values(last_pushed_image_keys=image_keys)
        )
    elif landed and set_quantity:
        db.execute(
            update(BINDINGS)
            .where(BINDINGS.c.id == bindparam("b_id"))
            .values(last_pushed_quantity=bindparam("b_quantity")),
            [{"b_id": m.binding_id, "b_quantity": m.quantity} for m in landed],
        )
    priced = [m for m in landed if m.price is not None] if set_price else []
    if priced:
        db.execute(
            update(BINDINGS)
            .where(BINDINGS.c.id == bindparam("b_id"))
            .values(last_pushed_price=bindparam("b_price")),
            [{"b_id": m.binding_id, "b_price": m.price} for m in priced],
        )
    if overtaken:
        db.execute(
            update(STATES)
            .where(STATES.c.kind == kind, STATES.c.binding_id.in_(overtaken))
            .values(desired_version=STATES.c.desired_version + 1)
        )
        # A push message straight away, not a trigger row: inserting a trigger here would take
        # its lock after the state rows, the opposite order of every change's transaction.
        shops = db.execute(
            select(BINDINGS.c.shop_id).where(BINDINGS.c.id.in_(overtaken)).distinct()
        ).scalars()
        actor, queue = PUSH_ACTORS[PushKind(kind)]
        for shop_id in sorted(shops):
            add_message(db, actor, queue, {"shop_id": shop_id, "kind": kind}, delay_ms=debounce_ms)
    return overtaken


def pushed_versions(db: Connection, kind: str, binding_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(binding_ids))
    return dict(
        db.execute(
            select(STATES.c.binding_id, STATES.c.pushed_version).where(
                STATES.c.kind == kind, STATES.c.binding_id.in_(ids)
            )
        ).all()
    )


@dataclass(frozen=True)
class DueImageBinding:
    binding_id: int
    variant_id: int
    product_id: int
    listing_id: str | None
    last_pushed_image_keys: list[str] | None
    desired_version: int


def due_image_bindings(db: Connection, shop_id: int, kind: str) -> list[DueImageBinding]:
    columns = (
        BINDINGS.c.id,
        BINDINGS.c.variant_id,
        VARIANTS.c.product_id,
        BINDINGS.c.external_listing_id,
        BINDINGS.c.last_pushed_image_keys,
        STATES.c.desired_version,
    )
    return [
        DueImageBinding(row[0], row[1], row[2], row[3], list(row[4]) if row[4] else None, row[5])
        for row in _due_rows(db, shop_id, kind, columns)
    ]


def variants_of_products(db: Connection, product_ids: Iterable[int]) -> list[int]:
    wanted = sorted(set(product_ids))
    if not wanted:
        return []
    return list(
        db.execute(select(VARIANTS.c.id).where(VARIANTS.c.product_id.in_(wanted))).scalars()
    )
