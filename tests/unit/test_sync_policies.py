"""Budgets, backoff and batch keys: the rules every outbound operation lives by."""

from __future__ import annotations

import pytest

from sync.domain.batches import batch_key, retry_key
from sync.domain.policies import CATALOG_PULL, FULFILLMENT_PUSH, STOCK_BATCH, policy


def test_backoff_doubles_up_to_its_ceiling() -> None:
    rules = policy(STOCK_BATCH)
    waits = [rules.backoff(n) for n in range(1, 12)]
    assert waits[0] == rules.first_backoff_seconds
    assert waits[1] == 2 * rules.first_backoff_seconds
    assert waits == sorted(waits)
    assert max(waits) == rules.max_backoff_seconds


def test_backoff_never_waits_less_than_the_marketplace_asked() -> None:
    rules = policy(FULFILLMENT_PUSH)
    assert rules.backoff(1, retry_after=42.0) == 42.0
    assert rules.backoff(1, retry_after=0.5) == rules.first_backoff_seconds


@pytest.mark.parametrize("kind", [STOCK_BATCH, FULFILLMENT_PUSH, CATALOG_PULL])
def test_every_kind_has_a_budget_and_a_lease(kind: str) -> None:
    rules = policy(kind)
    assert rules.max_attempts >= 1
    assert rules.lease_seconds > 0


def test_a_batch_key_depends_on_members_and_versions_not_their_order() -> None:
    key = batch_key("stock", 7, [(1, 3), (2, 5)])
    assert key == batch_key("stock", 7, [(2, 5), (1, 3)])
    assert key != batch_key("stock", 7, [(1, 3), (2, 6)])  # a newer version is a new batch
    assert key != batch_key("stock", 8, [(1, 3), (2, 5)])
    assert key != batch_key("listing", 7, [(1, 3), (2, 5)])
    assert key.startswith("stock:")


def test_a_stale_retry_gets_a_key_of_its_own_per_levels_read() -> None:
    key = batch_key("stock", 7, [(1, 3)])
    first = retry_key(key, {"gid://shopify/InventoryItem/1": 9})
    assert first != key
    assert first == retry_key(key, {"gid://shopify/InventoryItem/1": 9})
    assert first != retry_key(key, {"gid://shopify/InventoryItem/1": 8})
