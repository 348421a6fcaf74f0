"""Price rules per shop on SQL: one row a shop, every amount an exact decimal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hub.domain.pricing import PriceRule, Rounding, ShopPriceRule
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import PriceRuleRow, table_of

PRICE_RULES = table_of(PriceRuleRow)


class SqlPriceRuleRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def get(self, shop_id: int) -> ShopPriceRule | None:
        return self.for_shops([shop_id]).get(shop_id)

    def for_shops(self, shop_ids: Iterable[int]) -> dict[int, ShopPriceRule]:
        ids = sorted(set(shop_ids))
        if not ids:
            return {}
        rows = self._db.execute(select(PRICE_RULES).where(PRICE_RULES.c.shop_id.in_(ids)))
        return {row.shop_id: _rule(row) for row in rows}

    def save(self, rule: ShopPriceRule) -> ShopPriceRule:
        saved = replace(rule, updated_at=utcnow())
        values = _values(saved)
        changed = self._db.execute(
            update(PRICE_RULES).where(PRICE_RULES.c.shop_id == rule.shop_id).values(**values)
        ).rowcount
        if not changed:
            self._db.execute(insert(PRICE_RULES).values(shop_id=rule.shop_id, **values))
        return saved


def _values(stored: ShopPriceRule) -> dict[str, Any]:
    rule = stored.rule
    return {
        "currency": rule.currency,
        "base_currency": rule.base_currency,
        "conversion_rate": rule.conversion_rate,
        "markup_percent": rule.markup_percent,
        "markup_fixed": rule.markup_fixed,
        "fee_percent": rule.fee_percent,
        "fee_fixed": rule.fee_fixed,
        "rounding": rule.rounding.value,
        "version": stored.version,
        "updated_at": stored.updated_at,
    }


def _rule(row: Any) -> ShopPriceRule:
    return ShopPriceRule(
        shop_id=row.shop_id,
        rule=PriceRule(
            currency=row.currency,
            base_currency=row.base_currency,
            conversion_rate=row.conversion_rate,
            markup_percent=row.markup_percent,
            markup_fixed=row.markup_fixed,
            fee_percent=row.fee_percent,
            fee_fixed=row.fee_fixed,
            rounding=Rounding(row.rounding),
        ),
        version=row.version,
        updated_at=row.updated_at,
    )
