"""Names of cached read documents. Bump the shape number when a document's shape changes."""

from __future__ import annotations

ORDER_SHAPE = 1
PRODUCT_SHAPE = 2  # 2: variants carry their cost


def order_key(order_id: int) -> str:
    return f"order:v{ORDER_SHAPE}:{order_id}"


def product_key(product_id: int) -> str:
    return f"product:v{PRODUCT_SHAPE}:{product_id}"
