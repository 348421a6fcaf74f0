"""Products, variants and their blank usage on SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from hub.domain.catalog import BlankUsage, Product, Variant
from hub.domain.pricing import VariantPrice
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import ProductRow, VariantBlankRow, VariantRow, table_of

PRODUCTS = table_of(ProductRow)
VARIANTS = table_of(VariantRow)
VARIANT_BLANKS = table_of(VariantBlankRow)
SKU_CHUNK = 1000  # bound parameters per IN list: far below SQLite's and PostgreSQL's limits


class SqlCatalogRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def add_product(self, product: Product) -> Product:
        now = utcnow()
        product.id = self._db.execute(
            insert(PRODUCTS)
            .values(
                seller_id=product.seller_id,
                title=product.title,
                description=product.description,
                currency=product.currency,
                version=product.version,
                created_at=now,
                updated_at=now,
            )
            .returning(PRODUCTS.c.id)
        ).scalar_one()
        product.created_at = product.updated_at = now
        for position, variant in enumerate(product.variants):
            self._insert_variant(product, variant, position)
        return product

    def get_product(self, product_id: int) -> Product | None:
        row = self._db.execute(
            select(PRODUCTS).where(PRODUCTS.c.id == product_id).with_for_update()
        ).first()
        if row is None:
            return None
        variants = list(
            self._db.execute(
                select(VARIANTS)
                .where(VARIANTS.c.product_id == product_id)
                .order_by(VARIANTS.c.position)
            )
        )
        usage = self.blank_usage(v.id for v in variants)
        return Product(
            id=row.id,
            seller_id=row.seller_id,
            title=row.title,
            description=row.description,
            currency=row.currency,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            variants=[
                Variant(
                    id=v.id,
                    sku=v.sku,
                    price=v.price,
                    options=dict(v.options or {}),
                    print_file_ref=v.print_file_ref,
                    blanks=usage.get(v.id, []),
                    cost=v.cost,
                )
                for v in variants
            ],
        )

    def save_product(self, product: Product) -> None:
        assert product.id is not None
        now = utcnow()
        self._db.execute(
            update(PRODUCTS)
            .where(PRODUCTS.c.id == product.id)
            .values(
                title=product.title,
                description=product.description,
                currency=product.currency,
                version=product.version,
                updated_at=now,
            )
        )
        product.updated_at = now
        kept = [v.id for v in product.variants if v.id is not None]
        stale = delete(VARIANTS).where(VARIANTS.c.product_id == product.id)
        if kept:
            stale = stale.where(VARIANTS.c.id.not_in(kept))
        self._db.execute(stale)
        for position, variant in enumerate(product.variants):
            if variant.id is None:
                self._insert_variant(product, variant, position)
                continue
            self._db.execute(
                update(VARIANTS)
                .where(VARIANTS.c.id == variant.id)
                .values(**self._variant_values(variant), position=position)
            )
            self._db.execute(
                delete(VARIANT_BLANKS).where(VARIANT_BLANKS.c.variant_id == variant.id)
            )
            self._insert_usage(variant)

    def blank_usage(self, variant_ids: Iterable[int]) -> dict[int, list[BlankUsage]]:
        ids = sorted(set(variant_ids))
        if not ids:
            return {}
        usage: dict[int, list[BlankUsage]] = defaultdict(list)
        rows = self._db.execute(
            select(VARIANT_BLANKS)
            .where(VARIANT_BLANKS.c.variant_id.in_(ids))
            .order_by(VARIANT_BLANKS.c.variant_id, VARIANT_BLANKS.c.blank_id)
        )
        for row in rows:
            usage[row.variant_id].append(BlankUsage(row.blank_id, row.quantity_per_unit))
        return dict(usage)

    def skus(self, variant_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(variant_ids))
        if not ids:
            return {}
        rows = self._db.execute(select(VARIANTS.c.id, VARIANTS.c.sku).where(VARIANTS.c.id.in_(ids)))
        return {row.id: row.sku for row in rows}

    def variant_seller(self, variant_id: int) -> tuple[int, str] | None:
        row = self._db.execute(
            select(VARIANTS.c.seller_id, VARIANTS.c.sku).where(VARIANTS.c.id == variant_id)
        ).first()
        return (row.seller_id, row.sku) if row else None

    def variants_by_sku(self, seller_id: int, skus: Iterable[str]) -> dict[str, list[int]]:
        wanted = sorted(set(skus))
        found: dict[str, list[int]] = defaultdict(list)
        for start in range(0, len(wanted), SKU_CHUNK):  # one round trip below SKU_CHUNK SKUs
            rows = self._db.execute(
                select(VARIANTS.c.sku, VARIANTS.c.id)
                .where(
                    VARIANTS.c.seller_id == seller_id,
                    VARIANTS.c.sku.in_(wanted[start : start + SKU_CHUNK]),
                )
                .order_by(VARIANTS.c.sku, VARIANTS.c.id)
            )
            for row in rows:
                found[row.sku].append(row.id)
        return dict(found)

    def variant_prices(self, variant_ids: Iterable[int]) -> dict[int, VariantPrice]:
        ids = sorted(set(variant_ids))
        found: dict[int, VariantPrice] = {}
        for start in range(0, len(ids), SKU_CHUNK):
            rows = self._db.execute(
                select(
                    VARIANTS.c.id,
                    VARIANTS.c.sku,
                    VARIANTS.c.price,
                    VARIANTS.c.cost,
                    PRODUCTS.c.currency,
                )
                .join(PRODUCTS, PRODUCTS.c.id == VARIANTS.c.product_id)
                .where(VARIANTS.c.id.in_(ids[start : start + SKU_CHUNK]))
            )
            for row in rows:
                found[row.id] = VariantPrice(row.id, row.sku, row.price, row.cost, row.currency)
        return found

    def _insert_variant(self, product: Product, variant: Variant, position: int) -> None:
        variant.id = self._db.execute(
            insert(VARIANTS)
            .values(
                product_id=product.id,
                seller_id=product.seller_id,
                position=position,
                **self._variant_values(variant),
            )
            .returning(VARIANTS.c.id)
        ).scalar_one()
        self._insert_usage(variant)

    def _insert_usage(self, variant: Variant) -> None:
        if variant.blanks:
            self._db.execute(
                insert(VARIANT_BLANKS),
                [
                    {
                        "variant_id": variant.id,
                        "blank_id": use.blank_id,
                        "quantity_per_unit": use.quantity_per_unit,
                    }
                    for use in variant.blanks
                ],
            )

    @staticmethod
    def _variant_values(variant: Variant) -> dict[str, Any]:
        return {
            "sku": variant.sku,
            "price": variant.price,
            "cost": variant.cost,
            "options": variant.options,
            "print_file_ref": variant.print_file_ref,
        }
