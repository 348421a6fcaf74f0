"""Budgets and backoff per operation kind.

An attempt is a real remote call: waiting for a rate limit, a lock or a parked time spends none.
Out of budget, an operation becomes ``failed`` with its last error, visible and replayable.
"""

from __future__ import annotations

from dataclasses import dataclass

STOCK_BATCH = "stock.batch"
FULFILLMENT_PUSH = "fulfillment.push"
CATALOG_PULL = "catalog.pull"
IMAGES_RENDER = "images.render"
IMAGES_LISTING = "images.listing"
WEBHOOKS_CHECK = "webhooks.check"


@dataclass(frozen=True)
class Policy:
    max_attempts: int  # real remote calls before the operation fails
    first_backoff_seconds: float
    max_backoff_seconds: float
    lease_seconds: float  # a running operation not finished by then is taken again

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential from the first backoff, never shorter than the marketplace asked."""
        exponential = self.first_backoff_seconds * 2 ** max(0, attempts - 1)
        return float(max(min(exponential, self.max_backoff_seconds), retry_after or 0.0))


POLICIES: dict[str, Policy] = {
    # Stock is absolute and time-critical: retry quickly and often; a newer batch may win anyway.
    STOCK_BATCH: Policy(
        max_attempts=8, first_backoff_seconds=1, max_backoff_seconds=300, lease_seconds=120
    ),
    # A tracking write e-mails the buyer: few attempts, each preceded by a read of what exists.
    FULFILLMENT_PUSH: Policy(
        max_attempts=6, first_backoff_seconds=5, max_backoff_seconds=1800, lease_seconds=120
    ),
    # A catalog scan reads many pages; it is cheap to run again later.
    CATALOG_PULL: Policy(
        max_attempts=4, first_backoff_seconds=10, max_backoff_seconds=1800, lease_seconds=900
    ),
    # A render is local CPU work: a failure is nearly always the file itself (reported at once).
    IMAGES_RENDER: Policy(
        max_attempts=3, first_backoff_seconds=10, max_backoff_seconds=600, lease_seconds=600
    ),
    # Replacing a listing's images: the marketplace fetches our signed URLs afterwards.
    IMAGES_LISTING: Policy(
        max_attempts=6, first_backoff_seconds=5, max_backoff_seconds=1800, lease_seconds=300
    ),
    # Listing and repairing a shop's webhook subscriptions: a few calls, repeated hourly anyway.
    WEBHOOKS_CHECK: Policy(
        max_attempts=4, first_backoff_seconds=30, max_backoff_seconds=1800, lease_seconds=300
    ),
}


def policy(kind: str) -> Policy:
    return POLICIES[kind]
