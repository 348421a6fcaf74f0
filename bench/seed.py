"""Fill a freshly migrated PostgreSQL schema with a realistic catalog and order book, fast.

Rows go in through ``COPY ... FROM STDIN`` on one psycopg connection (about 300k rows in a few
seconds; row-by-row INSERTs through the repositories would take minutes). Ids are assigned here,
1..n per table, so the load generator knows every valid id without asking the database; the
sequences are moved past them afterwards so the schema stays usable for ordinary inserts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CENTS = Decimal("0.01")
SIZES = ("XS", "S", "M", "L", "XL", "2XL")
COLOURS = ("Black", "White", "Heather Grey", "Navy", "Forest Green", "Maroon")
GARMENTS = ("Unisex Tee", "Hoodie", "Crewneck Sweatshirt", "Tank Top", "Long Sleeve Tee")
THEMES = ("Retro Sunset", "Mountain Line Art", "Cat Astronaut", "Vintage Botanical", "Coffee")
FIRST_NAMES = ("Ava", "Liam", "Mia", "Noah", "Zoe", "Ethan", "Lena", "Omar", "Ines", "Kai")
LAST_NAMES = ("Smith", "Garcia", "Nguyen", "Müller", "Rossi", "Kowalski", "Okafor", "Tanaka")
CITIES = (
    ("Portland", "OR", "97201"),
    ("Austin", "TX", "73301"),
    ("Denver", "CO", "80202"),
    ("Columbus", "OH", "43004"),
    ("Raleigh", "NC", "27601"),
)
SHOP_KINDS = ("shopify", "etsy", "woocommerce", "shopify")
SEEDED = (
    "sellers",
    "shops",
    "blanks",
    "products",
    "variants",
    "variant_blanks",
    "orders",
    "order_lines",
)


@dataclass(frozen=True)
class SeedReport:
    sellers: int
    shops: int
    blanks: int
    products: int
    variants: int
    orders: int
    order_lines: int
    seconds: float


def conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL for a SQLAlchemy one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _copy(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[Any]
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def seed(
    sqlalchemy_url: str,
    schema: str,
    *,
    orders: int = 100_000,
    products: int = 5_000,
    shops: int = 4,
    lines_per_order: int = 2,
    seed: int = 20261101,
) -> SeedReport:
    """Seed one seller's shops, catalog and orders into ``schema`` (already migrated)."""
    began = time.perf_counter()
    rng = random.Random(seed)
    with psycopg.connect(conninfo(sqlalchemy_url)) as connection, connection.cursor() as cur:
        cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        _copy(cur, "sellers", ("id", "name", "created_at"), [(1, "Bench Prints Co.", NOW)])

        shop_rows = []
        for shop_id in range(1, shops + 1):
            kind = SHOP_KINDS[(shop_id - 1) % len(SHOP_KINDS)]
            shop_rows.append(
                (
                    shop_id,
                    1,
                    kind,
                    f"{kind}-shop-{shop_id}",
                    f"Bench {kind.title()} Store {shop_id}",
                    "active",
                    1,
                    100,
                    f"https://store{shop_id}.example.com" if kind == "woocommerce" else None,
                    f"gid://shopify/Location/{7000 + shop_id}" if kind == "shopify" else None,
                    NOW,
                    NOW,
                )
            )
        _copy(
            cur,
            "shops",
            (
                "id",
                "seller_id",
                "marketplace",
                "external_id",
                "name",
                "status",
                "stock_buffer",
                "max_listed_quantity",
                "api_base_url",
                "location_id",
                "created_at",
                "updated_at",
            ),
            shop_rows,
        )

        blank_rows = [
            (
                index + 1,
                f"{garment.upper().replace(' ', '-')}-{colour.upper().replace(' ', '-')}",
                f"{garment} blank, {colour}",
                rng.randint(50, 2000),
                0,
                1,
                NOW,
            )
            for index, (garment, colour) in enumerate(
                (garment, colour) for garment in GARMENTS for colour in COLOURS
            )
        ]
        _copy(
            cur,
            "blanks",
            ("id", "code", "name", "on_hand", "reserved", "version", "updated_at"),
            blank_rows,
        )

        product_rows = []
        variant_rows = []
        variant_blank_rows = []
        variants: list[tuple[int, str, Decimal, str]] = []  # id, sku, price, title
        for product_id in range(1, products + 1):
            garment_index = rng.randrange(len(GARMENTS))
            title = f"{rng.choice(THEMES)} {GARMENTS[garment_index]} #{product_id}"
            created = NOW - timedelta(days=rng.uniform(30, 720))
            product_rows.append(
                (
                    product_id,
                    1,
                    title,
                    f"{title}. Soft ring-spun cotton, printed to order with water-based inks. "
                    "Machine wash cold, inside out; tumble dry low.",
                    "USD",
                    1,
                    created,
                    created + timedelta(days=rng.uniform(0, 20)),
                )
            )
            base = Decimal(rng.randrange(1800, 4500)) / 100
            for position, size in enumerate(rng.sample(SIZES, rng.randint(1, 3))):
                variant_id = len(variants) + 1
                colour_index = rng.randrange(len(COLOURS))
                sku = f"BP-{product_id:05d}-{size}-{colour_index}"
                price = (base + Decimal(position * 2)).quantize(CENTS)
                variant_rows.append(
                    (
                        variant_id,
                        product_id,
                        1,
                        sku,
                        price,
                        _json({"size": size, "color": COLOURS[colour_index]}),
                        f"prints/{product_id:05d}/front.png",
                        position,
                    )
                )
                blank_id = garment_index * len(COLOURS) + colour_index + 1
                variant_blank_rows.append((variant_id, blank_id, 1))
                variants.append((variant_id, sku, price, f"{title} - {size}"))
        _copy(
            cur,
            "products",
            (
                "id",
                "seller_id",
                "title",
                "description",
                "currency",
                "version",
                "created_at",
                "updated_at",
            ),
            product_rows,
        )
        _copy(
            cur,
            "variants",
            (
                "id",
                "product_id",
                "seller_id",
                "sku",
                "price",
                "options",
                "print_file_ref",
                "position",
            ),
            variant_rows,
        )
        _copy(
            cur,
            "variant_blanks",
            ("variant_id", "blank_id", "quantity_per_unit"),
            variant_blank_rows,
        )

        order_count, line_count = _copy_orders(
            cur, rng, orders=orders, shops=shops, lines_per_order=lines_per_order, variants=variants
        )

        for table in SEEDED:
            if table == "variant_blanks":
                continue  # keyed by its two foreign keys, no sequence
            cur.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({qualified}, 'id'), "
                    "(SELECT max(id) FROM {table}))"
                ).format(qualified=sql.Literal(f"{schema}.{table}"), table=sql.Identifier(table))
            )
        connection.commit()
        connection.autocommit = True
        # Freeze and analyze now: otherwise autovacuum wakes up on the 300k fresh rows in the
        # middle of a measured window, and the first reads of each page write hint bits.
        # Name the tables: a bare VACUUM would process every schema in the database.
        cur.execute(
            sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(
                sql.SQL(", ").join(sql.Identifier(schema, table) for table in SEEDED)
            )
        )
    return SeedReport(
        sellers=1,
        shops=shops,
        blanks=len(blank_rows),
        products=products,
        variants=len(variants),
        orders=order_count,
        order_lines=line_count,
        seconds=round(time.perf_counter() - began, 2),
    )


ORDER_COLUMNS = (
    "id",
    "seller_id",
    "shop_id",
    "external_id",
    "external_number",
    "external_status",
    "status",
    "needs_review",
    "review_reason",
    "paid",
    "cancelled",
    "refunded",
    "externally_fulfilled",
    "currency",
    "total",
    "presentment_currency",
    "total_presentment",
    "customer_name",
    "customer_email",
    "shipping_address",
    "placed_at",
    "external_updated_at",
    "version",
    "has_unmapped_lines",
    "created_at",
    "updated_at",
)
LINE_COLUMNS = (
    "id",
    "order_id",
    "external_line_id",
    "external_listing_id",
    "external_variant_id",
    "sku",
    "title",
    "quantity",
    "fulfilled_quantity",
    "reserved_quantity",
    "unit_price",
    "unit_price_presentment",
    "variant_id",
    "binding_id",
    "unmapped_reason",
)


def _copy_orders(
    cur: psycopg.Cursor[Any],
    rng: random.Random,
    *,
    orders: int,
    shops: int,
    lines_per_order: int,
    variants: Sequence[tuple[int, str, Decimal, str]],
) -> tuple[int, int]:
    """Orders and their lines, generated together so each total is the sum of its lines."""
    order_rows = []
    line_rows = []
    for order_id in range(1, orders + 1):
        shop_id = (order_id - 1) % shops + 1
        placed = NOW - timedelta(seconds=rng.uniform(0, 180 * 86400))
        total = Decimal("4.99")  # shipping
        for index in range(lines_per_order):
            variant_id, sku, price, title = rng.choice(variants)
            quantity = rng.choice((1, 1, 1, 2, 3))
            total += price * quantity
            line_id = (order_id - 1) * lines_per_order + index + 1
            line_rows.append(
                (
                    line_id,
                    order_id,
                    f"{9_000_000_000 + line_id}",
                    f"{8_000_000_000 + variant_id // 3}",
                    f"{7_000_000_000 + variant_id}",
                    sku,
                    title,
                    quantity,
                    0,
                    quantity,
                    price,
                    None,
                    variant_id,
                    None,
                    None,
                )
            )
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, postcode = rng.choice(CITIES)
        address = {
            "name": f"{first} {last}",
            "address1": f"{rng.randint(1, 9999)} {rng.choice(('Oak', 'Elm', 'Pine', 'Main'))} St",
            "address2": None,
            "city": city,
            "province_code": state,
            "zip": postcode,
            "country_code": "US",
            "phone": None,
        }
        received = placed + timedelta(seconds=rng.uniform(5, 600))
        order_rows.append(
            (
                order_id,
                1,
                shop_id,
                f"{5_000_000_000 + order_id}",
                f"#{1000 + order_id}",
                "paid",
                "received",
                False,
                None,
                True,
                False,
                False,
                False,
                "USD",
                total.quantize(CENTS),
                "USD",
                total.quantize(CENTS),
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}{order_id}@example.com",
                _json(address),
                placed,
                placed + timedelta(seconds=rng.uniform(0, 300)),
                1,
                False,
                received,
                received,
            )
        )
    order_count = _copy(cur, "orders", ORDER_COLUMNS, order_rows)
    line_count = _copy(cur, "order_lines", LINE_COLUMNS, line_rows)
    return order_count, line_count
