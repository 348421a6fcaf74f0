"""Keeping a shop's webhooks alive: Shopify deletes subscriptions after failed deliveries and
WooCommerce disables them, silently both. A scheduled check per shop lists what is there,
creates what is missing and re-enables what was disabled; for Etsy, whose subscriptions live in
its developer portal, it reports how long ago a verified delivery last came in.

Polling keeps orders complete either way; the check keeps them fast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from connectors.contract import ShopContext, WebhookRegistry
from hub.domain.onboarding import WebhookHealth
from hub.domain.shops import Shop
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import WEBHOOKS_CHECK_ACTOR
from hub.infrastructure.tables import table_of
from sync.application import operations_run as run
from sync.application.onboarding import WEBHOOKS_CHECK_QUEUE, webhook_address
from sync.domain.policies import WEBHOOKS_CHECK
from sync.infrastructure import operations as ops
from sync.infrastructure.tables import InboundEventRow
from sync.worker.runtime import SyncRuntime, shop_context

EVENTS = table_of(InboundEventRow)
ROUTE = run.Route(WEBHOOKS_CHECK, WEBHOOKS_CHECK_ACTOR, WEBHOOKS_CHECK_QUEUE)


@dataclass
class CheckReport:
    health: WebhookHealth
    detail: str
    created: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)
    last_delivery_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "health": self.health.value,
            "detail": self.detail,
            "created": self.created,
            "enabled": self.enabled,
            "healthy": self.healthy,
            "last_delivery_at": self.last_delivery_at.isoformat()
            if self.last_delivery_at
            else None,
        }


def run_webhook_check(runtime: SyncRuntime, operation_id: int) -> CheckReport | None:
    with runtime.container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=ROUTE.policy.lease_seconds)
    if operation is None:
        return None
    shop = run.active_shop(runtime, operation, ROUTE)
    if shop is None:
        return None
    connector = runtime.connector(shop.marketplace.value)
    if isinstance(connector, WebhookRegistry):
        address = webhook_address(
            runtime.container.settings.public_base_url, shop.marketplace, shop.id or 0
        )
        context = shop_context(shop)
        outcome = run.call_remote(
            runtime,
            operation,
            ROUTE,
            shop,
            lambda: reconcile_subscriptions(connector, context, shop, address),
        )
        if outcome is None:
            _record(runtime, shop, WebhookHealth.FAILING, "the last check could not finish")
            return None
        report, duration_ms = outcome
    else:
        started = time.monotonic()
        report = delivery_silence(runtime, shop)
        duration_ms = run.elapsed_ms(started)
    _record(runtime, shop, report.health, report.detail)
    run.succeeded(runtime, operation, duration_ms, report.as_dict())
    return report


def reconcile_subscriptions(
    connector: WebhookRegistry, context: ShopContext, shop: Shop, address: str
) -> CheckReport:
    """Every topic the hub needs, subscribed at our address and active."""
    found = connector.list_webhooks(context)
    report = CheckReport(WebhookHealth.OK, "")
    secret = shop.credentials.get("webhook_secret")
    for topic in connector.webhook_topics:
        ours = [sub for sub in found if sub.topic == topic and sub.address == address]
        if not ours:
            connector.create_webhook(context, topic, address, secret=secret)
            report.created.append(topic)
        elif not any(sub.active for sub in ours):
            connector.enable_webhook(context, ours[0].id)
            report.enabled.append(topic)
        else:
            report.healthy.append(topic)
    if report.created or report.enabled:
        report.health = WebhookHealth.REPAIRED
        parts = []
        if report.created:
            parts.append(f"created {', '.join(report.created)}")
        if report.enabled:
            parts.append(f"re-enabled {', '.join(report.enabled)}")
        report.detail = "; ".join(parts)
    else:
        report.detail = f"{len(report.healthy)} subscriptions active"
    return report


def delivery_silence(runtime: SyncRuntime, shop: Shop) -> CheckReport:
    """Portal-managed subscriptions (Etsy): only their deliveries tell whether they work."""
    settings = runtime.container.settings
    with runtime.container.engine.connect() as db:
        last = db.execute(
            select(func.max(EVENTS.c.received_at)).where(EVENTS.c.shop_id == shop.id)
        ).scalar_one_or_none()
    silence = timedelta(hours=settings.webhook_silence_hours)
    if last is None:
        return CheckReport(
            WebhookHealth.SILENT,
            "no verified delivery yet: check the webhook in the marketplace's developer portal "
            "(orders still arrive by polling)",
        )
    age = utcnow() - last
    if age > silence:
        hours = age.total_seconds() / 3600
        return CheckReport(
            WebhookHealth.SILENT,
            f"no verified delivery for {hours:.0f} h: check the webhook in the marketplace's "
            "developer portal (orders still arrive by polling)",
            last_delivery_at=last,
        )
    minutes = age.total_seconds() / 60
    return CheckReport(
        WebhookHealth.MANUAL,
        f"last verified delivery {minutes:.0f} min ago",
        last_delivery_at=last,
    )


def _record(runtime: SyncRuntime, shop: Shop, health: WebhookHealth, detail: str) -> None:
    with runtime.container.uow() as uow:
        connection = uow.connections.get(shop.id or 0)
        uow.connections.save(
            replace(
                connection,
                webhook_status=health,
                webhook_detail=detail,
                webhooks_checked_at=utcnow(),
            )
        )
        uow.commit()
