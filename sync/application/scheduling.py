"""When each shop is pulled: the reconciliation that catches whatever webhooks missed."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.domain.shops import Marketplace

SECONDS_PER_DAY = 86_400


def pull_interval_seconds(
    marketplace: Marketplace,
    *,
    default_seconds: int,
    active_shops_of_marketplace: int,
    etsy_requests_per_day: int,
    etsy_poll_share: float,
    calls_per_poll: int = 1,
) -> float:
    """Shopify and WooCommerce: the configured interval. Etsy counts requests per app across all
    shops, so each shop's interval follows from the polling share of the daily budget."""
    if marketplace is not Marketplace.ETSY:
        return float(default_seconds)
    polls_per_day = max(1.0, etsy_requests_per_day * etsy_poll_share / calls_per_poll)
    return max(
        float(default_seconds), SECONDS_PER_DAY * active_shops_of_marketplace / polls_per_day
    )


def due(last: datetime | None, now: datetime, interval_seconds: float) -> bool:
    return last is None or now - last >= timedelta(seconds=interval_seconds)
