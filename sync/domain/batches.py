"""Stock batch keys: the same members at the same versions always make the same key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping


def batch_key(kind: str, shop_id: int, members: Iterable[tuple[int, int]]) -> str:
    """sha256 of (kind, shop, sorted (binding, version) pairs), prefixed for readability."""
    document = json.dumps([kind, shop_id, sorted(members)], separators=(",", ":"))
    return f"stock:{hashlib.sha256(document.encode()).hexdigest()}"


def retry_key(key: str, expected: Mapping[str, int]) -> str:
    """A stale compare-and-swap is re-sent under a key derived from the freshly read values:
    Shopify refuses a reused idempotency key with other variables."""
    document = json.dumps(sorted(expected.items()), separators=(",", ":"))
    digest = hashlib.sha256(f"{key}|{document}".encode()).hexdigest()
    return f"stock:{digest}"
