"""Connecting a shop through the marketplace's own authorization, and how a connection stands.

A seller never pastes an OAuth token: the hub starts the marketplace's flow, remembers it
server-side under a single-use state, and completes it when the marketplace calls back. The
state is the callback's only proof of who started it, so it is random, stored hashed, used once
and short-lived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from hub.domain.errors import Unauthorized
from hub.domain.shops import Marketplace

# Shopify answers orders older than this only to apps granted ``read_all_orders``.
SHOPIFY_ORDER_HISTORY_DAYS = 60


@dataclass(frozen=True)
class ConnectOptions:
    """What the seller chose when starting, applied to the shop the callback creates."""

    name: str | None = None
    stock_buffer: int = 0
    max_listed_quantity: int | None = None
    backfill_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stock_buffer": self.stock_buffer,
            "max_listed_quantity": self.max_listed_quantity,
            "backfill_days": self.backfill_days,
        }

    @classmethod
    def of(cls, document: dict[str, Any]) -> ConnectOptions:
        return cls(
            name=document.get("name"),
            stock_buffer=int(document.get("stock_buffer") or 0),
            max_listed_quantity=document.get("max_listed_quantity"),
            backfill_days=document.get("backfill_days"),
        )


@dataclass
class PendingAuthorization:
    """One authorization in flight; ``code_verifier`` is Etsy's PKCE secret."""

    id: int | None
    seller_id: int
    marketplace: Marketplace
    shop_hint: str | None
    api_base_url: str | None
    options: ConnectOptions
    created_at: datetime
    expires_at: datetime
    code_verifier: str | None = field(default=None, repr=False)
    used_at: datetime | None = None
    shop_id: int | None = None

    def redeem(self, now: datetime) -> None:
        """Spend the state; any second use, or a late one, proves nothing."""
        if self.used_at is not None:
            raise Unauthorized("this authorization was completed already; start a new one")
        if now >= self.expires_at:
            raise Unauthorized(
                "this authorization expired; start a new one with `hub shops connect`"
            )
        self.used_at = now


def expiry(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)


class WebhookHealth(StrEnum):
    """What the last subscription check found."""

    UNCHECKED = "unchecked"
    OK = "ok"  # every topic subscribed and active
    REPAIRED = "repaired"  # something was missing or disabled, and was put back
    FAILING = "failing"  # the check could not reach the marketplace or could not repair
    SILENT = "silent"  # portal-managed subscriptions (Etsy) with no verified delivery lately
    MANUAL = "manual"  # portal-managed, recent deliveries verified


@dataclass
class ShopConnection:
    """How one shop's connection stands (``hub shops status``)."""

    shop_id: int
    connected_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    webhook_status: WebhookHealth = WebhookHealth.UNCHECKED
    webhook_detail: str | None = None
    webhooks_checked_at: datetime | None = None


def backfill_warning(marketplace: Marketplace, backfill_days: int) -> str | None:
    """The one limit a seller should hear about before consenting: Shopify hides old orders."""
    if marketplace is Marketplace.SHOPIFY and backfill_days > SHOPIFY_ORDER_HISTORY_DAYS:
        return (
            f"a backfill of {backfill_days} days reaches past Shopify's "
            f"{SHOPIFY_ORDER_HISTORY_DAYS}-day order window: the app needs the read_all_orders "
            "scope (granted by Shopify on request), or orders older than "
            f"{SHOPIFY_ORDER_HISTORY_DAYS} days are not imported"
        )
    return None
