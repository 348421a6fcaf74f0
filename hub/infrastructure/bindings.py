"""Bindings and their per-kind push versions on SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from hub.domain.catalog import Binding, PushState
from hub.domain.orders import LineMatch
from hub.domain.shops import PushKind
from hub.domain.stock import BlankLevel
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import pushable, trigger_pushes
from hub.infrastructure.tables import (
    BindingPushStateRow,
    BindingRow,
    BlankRow,
    VariantBlankRow,
    VariantRow,
    table_of,
)

BINDINGS = table_of(BindingRow)
STATES = table_of(BindingPushStateRow)
VARIANTS = table_of(VariantRow)
VARIANT_BLANKS = table_of(VariantBlankRow)
BLANKS = table_of(BlankRow)


class SqlBindingRepository:
    """Bindings, and the push triggers every change of a desired version queues with it."""

    def __init__(self, connection: Connection, *, push_debounce_ms: int = 300) -> None:
        self._db = connection
        self._debounce_ms = push_debounce_ms

    def _trigger(self, kinds: Iterable[PushKind], bindings: Any) -> None:
        """Queue a push per (kind, shop) of ``bindings`` (a select of binding ids)."""
        wanted = pushable(kinds)
        if wanted:
            pairs = (
                select(STATES.c.kind, BINDINGS.c.shop_id)
                .join(BINDINGS, BINDINGS.c.id == STATES.c.binding_id)
                .where(STATES.c.kind.in_(wanted), STATES.c.binding_id.in_(bindings))
            )
            trigger_pushes(self._db, pairs, debounce_ms=self._debounce_ms)

    def add(self, binding: Binding) -> Binding:
        now = utcnow()
        binding.id = self._db.execute(
            insert(BINDINGS)
            .values(
                shop_id=binding.shop_id,
                variant_id=binding.variant_id,
                created_at=now,
                listed_price=binding.listed_price,
                price_review=binding.price_review,
                **_id_values(binding),
            )
            .returning(BINDINGS.c.id)
        ).scalar_one()
        binding.created_at = now
        if binding.push_states:
            self._db.execute(
                insert(STATES),
                [
                    {
                        "binding_id": binding.id,
                        "kind": state.kind.value,
                        "desired_version": state.desired_version,
                        "pushed_version": state.pushed_version,
                    }
                    for state in binding.push_states.values()
                ],
            )
            due = [state.kind for state in binding.push_states.values() if state.is_due]
            self._trigger(due, select(literal(binding.id)))
        return binding

    def get(self, binding_id: int) -> Binding | None:
        found = self._load(BINDINGS.c.id == binding_id)
        return found[0] if found else None

    def find(self, shop_id: int, variant_id: int) -> Binding | None:
        found = self._load((BINDINGS.c.shop_id == shop_id) & (BINDINGS.c.variant_id == variant_id))
        return found[0] if found else None

    def for_shop(self, shop_id: int) -> list[Binding]:
        return self._load(BINDINGS.c.shop_id == shop_id)

    def for_variants(self, variant_ids: Iterable[int]) -> list[Binding]:
        ids = sorted(set(variant_ids))
        return self._load(BINDINGS.c.variant_id.in_(ids)) if ids else []

    def delete(self, binding_id: int) -> None:
        self._db.execute(delete(BINDINGS).where(BINDINGS.c.id == binding_id))

    def bound_variants(self, variant_ids: Iterable[int]) -> set[int]:
        ids = sorted(set(variant_ids))
        if not ids:
            return set()
        query = select(BINDINGS.c.variant_id).where(BINDINGS.c.variant_id.in_(ids)).distinct()
        return set(self._db.execute(query).scalars())

    def save(self, binding: Binding) -> None:
        self._db.execute(
            update(BINDINGS)
            .where(BINDINGS.c.id == binding.id)
            .values(
                last_pushed_quantity=binding.last_pushed_quantity,
                last_pushed_price=binding.last_pushed_price,
                last_pushed_image_keys=binding.last_pushed_image_keys,
                listed_price=binding.listed_price,
                price_review=binding.price_review,
                **_id_values(binding),
            )
        )
        for state in binding.push_states.values():
            self._db.execute(
                update(STATES)
                .where(STATES.c.binding_id == binding.id, STATES.c.kind == state.kind.value)
                .values(desired_version=state.desired_version, pushed_version=state.pushed_version)
            )
        due = [state.kind for state in binding.push_states.values() if state.is_due]
        self._trigger(due, select(literal(binding.id)))

    def save_prices(self, bindings: Iterable[Binding]) -> None:
        rows = [
            {"id_": b.id, "listed_price": b.listed_price, "price_review": b.price_review}
            for b in bindings
        ]
        if rows:
            # One executemany; the SET clause takes the column-named keys of each row.
            self._db.execute(update(BINDINGS).where(BINDINGS.c.id == bindparam("id_")), rows)

    def match_lines(
        self, shop_id: int, external_variant_ids: Iterable[str], skus: Iterable[str]
    ) -> tuple[dict[str, LineMatch], dict[str, LineMatch]]:
        ext_ids, sku_list = sorted(set(external_variant_ids)), sorted(set(skus))
        if not ext_ids and not sku_list:
            return {}, {}
        query = (
            select(
                BINDINGS.c.id, BINDINGS.c.variant_id, BINDINGS.c.external_variant_id, VARIANTS.c.sku
            )
            .join(VARIANTS, VARIANTS.c.id == BINDINGS.c.variant_id)
            .where(BINDINGS.c.shop_id == shop_id)
            .where(or_(BINDINGS.c.external_variant_id.in_(ext_ids), VARIANTS.c.sku.in_(sku_list)))
        )
        by_external: dict[str, LineMatch] = {}
        by_sku: dict[str, LineMatch] = {}
        for row in self._db.execute(query):
            match = LineMatch(variant_id=row.variant_id, binding_id=row.id)
            if row.external_variant_id in ext_ids:
                by_external[row.external_variant_id] = match
            if row.sku in sku_list:
                by_sku[row.sku] = match
        return by_external, by_sku

    def bump(
        self,
        kinds: Iterable[PushKind],
        *,
        blank_ids: Iterable[int] = (),
        variant_ids: Iterable[int] = (),
        shop_id: int | None = None,
    ) -> int:
        kind_values = sorted({kind.value for kind in kinds})
        blanks, variants = sorted(set(blank_ids)), sorted(set(variant_ids))
        if not kind_values or not (blanks or variants or shop_id is not None):
            return 0
        reached = select(BINDINGS.c.id)
        conditions = []
        if blanks:
            users = select(VARIANT_BLANKS.c.variant_id).where(VARIANT_BLANKS.c.blank_id.in_(blanks))
            conditions.append(BINDINGS.c.variant_id.in_(users))
        if variants:
            conditions.append(BINDINGS.c.variant_id.in_(variants))
        if conditions:
            reached = reached.where(or_(*conditions))
        if shop_id is not None:
            reached = reached.where(BINDINGS.c.shop_id == shop_id)
        # Locks are taken in one order by every writer, so concurrent imports, pushes and stock
        # takes queue instead of deadlocking: the (kind, shop) triggers first, then the state
        # rows in (binding, kind) order, chosen by a locking subquery (PostgreSQL; SQLite has
        # one writer anyway).
        self._trigger([PushKind(kind) for kind in kind_values], reached)
        chosen = (
            select(STATES.c.binding_id, STATES.c.kind)
            .where(STATES.c.kind.in_(kind_values), STATES.c.binding_id.in_(reached))
            .order_by(STATES.c.binding_id, STATES.c.kind)
            .with_for_update()
        )
        result = self._db.execute(
            update(STATES)
            .where(tuple_(STATES.c.binding_id, STATES.c.kind).in_(chosen))
            .values(desired_version=STATES.c.desired_version + 1)
        )
        return int(result.rowcount or 0)

    def stock_levels(self, shop_id: int) -> dict[int, list[BlankLevel]]:
        query = (
            select(
                BINDINGS.c.id,
                BLANKS.c.on_hand,
                BLANKS.c.reserved,
                VARIANT_BLANKS.c.quantity_per_unit,
            )
            .join(VARIANT_BLANKS, VARIANT_BLANKS.c.variant_id == BINDINGS.c.variant_id)
            .join(BLANKS, BLANKS.c.id == VARIANT_BLANKS.c.blank_id)
            .where(BINDINGS.c.shop_id == shop_id)
        )
        levels: dict[int, list[BlankLevel]] = defaultdict(list)
        for row in self._db.execute(query):
            levels[row.id].append(BlankLevel(row.on_hand, row.reserved, row.quantity_per_unit))
        return dict(levels)

    def _load(self, condition: Any) -> list[Binding]:
        rows = list(self._db.execute(select(BINDINGS).where(condition).order_by(BINDINGS.c.id)))
        if not rows:
            return []
        states: dict[int, dict[PushKind, PushState]] = defaultdict(dict)
        for s in self._db.execute(
            select(STATES).where(STATES.c.binding_id.in_([r.id for r in rows]))
        ):
            states[s.binding_id][PushKind(s.kind)] = PushState(
                PushKind(s.kind), s.desired_version, s.pushed_version
            )
        return [
            Binding(
                id=row.id,
                shop_id=row.shop_id,
                variant_id=row.variant_id,
                external_listing_id=row.external_listing_id,
                external_variant_id=row.external_variant_id,
                external_inventory_item_id=row.external_inventory_item_id,
                push_states=states.get(row.id, {}),
                last_pushed_quantity=row.last_pushed_quantity,
                last_pushed_price=row.last_pushed_price,
                last_pushed_image_keys=row.last_pushed_image_keys,
                created_at=row.created_at,
                listed_price=row.listed_price,
                price_review=row.price_review,
            )
            for row in rows
        ]


def _id_values(binding: Binding) -> dict[str, Any]:
    return {
        "external_listing_id": binding.external_listing_id,
        "external_variant_id": binding.external_variant_id,
        "external_inventory_item_id": binding.external_inventory_item_id,
    }
