"""The demo's catalog: blanks shared by several designs, the products on them, their mockups, and
the bulk JSON document the hub imports it from (``hub catalog import``, ``POST /catalog/import``).

The same products are listed in every marketplace sandbox (``cli.sandboxes``), so the hub's
catalog pull binds them by SKU.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from PIL import Image, ImageDraw

MOCKUP_SIZE = 1000  # px, square: below every marketplace rendition, so no upscaling


@dataclass(frozen=True)
class BlankDef:
    code: str
    name: str
    share: float  # how much of the run's orders it backs: sizes its on-hand count


@dataclass(frozen=True)
class VariantDef:
    sku: str
    price: Decimal
    options: dict[str, str]
    blanks: tuple[tuple[str, int], ...]  # (blank code, units per item)


@dataclass(frozen=True)
class ProductDef:
    title: str
    kind: str  # tee, mug, set or tote: what its mockup shows
    colour: tuple[int, int, int]
    variants: tuple[VariantDef, ...]

    @property
    def skus(self) -> list[str]:
        return [variant.sku for variant in self.variants]


SIZES = ("S", "M", "L")
BLANKS = (
    *(BlankDef(f"TEE-WHITE-{size}", f"White tee {size}", 1.0) for size in SIZES),
    BlankDef("MUG-11OZ", "White mug 11 oz", 0.7),
    BlankDef("TOTE-NATURAL", "Natural tote bag", 0.4),
)
DESIGNS = (
    ("Mountain Sunrise", "MTN", (233, 120, 72)),
    ("Ocean Waves", "OCN", (52, 120, 190)),
    ("Desert Bloom", "DSB", (201, 160, 70)),
    ("City Lights", "CTY", (70, 60, 120)),
)


def _tee(title: str, code: str, colour: tuple[int, int, int]) -> ProductDef:
    return ProductDef(
        f"{title} tee",
        "tee",
        colour,
        tuple(
            VariantDef(
                f"{code}-TEE-{size}",
                Decimal("24.00"),
                {"size": size, "colour": "white"},
                ((f"TEE-WHITE-{size}", 1),),
            )
            for size in SIZES
        ),
    )


PRODUCTS: tuple[ProductDef, ...] = (
    *(_tee(title, code, colour) for title, code, colour in DESIGNS),
    ProductDef(
        "Mountain Sunrise mug",
        "mug",
        (233, 120, 72),
        (VariantDef("MTN-MUG", Decimal("14.50"), {"type": "mug"}, (("MUG-11OZ", 1),)),),
    ),
    ProductDef(
        "Ocean Waves mug",
        "mug",
        (52, 120, 190),
        (VariantDef("OCN-MUG", Decimal("14.50"), {"type": "mug"}, (("MUG-11OZ", 1),)),),
    ),
    ProductDef(  # two blanks: its availability is the scarcer of the two
        "Mountain Sunrise gift set",
        "set",
        (233, 120, 72),
        (
            VariantDef(
                "MTN-SET-M",
                Decimal("34.00"),
                {"size": "M", "type": "tee and mug"},
                (("TEE-WHITE-M", 1), ("MUG-11OZ", 1)),
            ),
        ),
    ),
    ProductDef(
        "City Lights tote",
        "tote",
        (70, 60, 120),
        (VariantDef("CTY-TOTE", Decimal("18.00"), {"type": "tote"}, (("TOTE-NATURAL", 1),)),),
    ),
)


def blank_code(code: str, run_id: str) -> str:
    """Blank codes are global: each run gets its own, so runs never share stock."""
    return f"{code}-{run_id}"


def on_hand_for(blank: BlankDef, orders: int) -> int:
    """Enough that the run's customers never empty a blank, low enough that stock visibly falls."""
    return 20 + math.ceil(orders * blank.share)


# What a print costs us: blank, ink and labour, as a share of our default retail price.
COST_SHARE = Decimal("0.40")


def production_cost(retail: Decimal) -> Decimal:
    return (retail * COST_SHARE).quantize(Decimal("0.01"))


# Each shop's price rule (PUT /shops/{id}/price-rule): the marketplace's fees, the seller's
# markup and rounding; the Etsy shop sells in euros at a configured rate.
PRICE_RULES: dict[str, dict[str, str]] = {
    "shopify": {
        "currency": "USD",
        "base_currency": "USD",
        "conversion_rate": "1",
        "markup_percent": "10",
        "fee_percent": "2.9",
        "fee_fixed": "0.30",
        "rounding": "to_99",
    },
    "etsy": {
        "currency": "EUR",
        "base_currency": "USD",
        "conversion_rate": "0.92",
        "markup_percent": "15",
        "fee_percent": "6.5",
        "fee_fixed": "0.20",
        "rounding": "to_95",
    },
    "woocommerce": {
        "currency": "USD",
        "base_currency": "USD",
        "conversion_rate": "1",
        "markup_percent": "5",
        "markup_fixed": "1.00",
        "rounding": "whole",
    },
}
# Halfway through the orders the Etsy seller raises the markup: every Etsy listing is repriced.
MIDWAY_RULE_CHANGE = ("etsy", {"markup_percent": "25"})


def catalog_document(seller_id: int, run_id: str, orders: int) -> dict[str, Any]:
    """The bulk import document (the format of ``hub.application.catalog_import``)."""
    return {
        "seller_id": seller_id,
        "blanks": [
            {
                "code": blank_code(blank.code, run_id),
                "name": blank.name,
                "on_hand": on_hand_for(blank, orders),
            }
            for blank in BLANKS
        ],
        "products": [
            {
                "title": product.title,
                "description": f"Printed to order: {product.title}.",
                "currency": "USD",
                "variants": [
                    {
                        "sku": variant.sku,
                        "price": str(variant.price),
                        "cost": str(production_cost(variant.price)),
                        "options": variant.options,
                        "print_file_ref": f"print/{variant.sku.lower()}.png",
                        "blanks": [
                            {"code": blank_code(code, run_id), "quantity": quantity}
                            for code, quantity in variant.blanks
                        ],
                    }
                    for variant in product.variants
                ],
            }
            for product in PRODUCTS
        ],
    }


def mockup_png(product: ProductDef) -> bytes:
    """A deterministic flat mockup: the blank's silhouette in white on the design's colour, the
    design as a band across it."""
    size = MOCKUP_SIZE
    image = Image.new("RGB", (size, size), product.colour)
    draw = ImageDraw.Draw(image)
    white, ink = (250, 250, 248), tuple(max(0, c - 60) for c in product.colour)
    if product.kind in ("tee", "set"):
        width = float(size if product.kind == "tee" else size * 0.6)
        x = 0.0 if product.kind == "tee" else size * 0.05
        draw.polygon(
            [
                (x + width * 0.30, size * 0.18),
                (x + width * 0.70, size * 0.18),
                (x + width * 0.92, size * 0.32),
                (x + width * 0.82, size * 0.42),
                (x + width * 0.74, size * 0.36),
                (x + width * 0.74, size * 0.86),
                (x + width * 0.26, size * 0.86),
                (x + width * 0.26, size * 0.36),
                (x + width * 0.18, size * 0.42),
                (x + width * 0.08, size * 0.32),
            ],
            fill=white,
        )
        draw.rectangle((x + width * 0.34, size * 0.40, x + width * 0.66, size * 0.52), fill=ink)
    if product.kind in ("mug", "set"):
        left = size * 0.25 if product.kind == "mug" else size * 0.62
        body = size * 0.45 if product.kind == "mug" else size * 0.30
        top, bottom = size * 0.30, size * 0.80
        draw.ellipse(
            (left + body * 0.80, top + 60, left + body * 1.25, bottom - 80),
            outline=white,
            width=max(8, size // 40),
        )
        draw.rectangle((left, top, left + body, bottom), fill=white)
        draw.rectangle(
            (left, top + 0.35 * (bottom - top), left + body, top + 0.55 * (bottom - top)), fill=ink
        )
    if product.kind == "tote":
        draw.arc(
            (size * 0.35, size * 0.12, size * 0.65, size * 0.45), 180, 360, fill=white, width=18
        )
        draw.rectangle((size * 0.22, size * 0.30, size * 0.78, size * 0.88), fill=white)
        draw.rectangle((size * 0.30, size * 0.50, size * 0.70, size * 0.64), fill=ink)
    draw.text((size * 0.05, size * 0.92), product.title, fill=white)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
