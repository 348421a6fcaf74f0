"""Connectors are plugins: any installed distribution that declares an entry point in the
``hub.connectors`` group adds a marketplace, with no change to the hub's code.

An entry point names a factory ``create(config: ConnectorConfig) -> MarketplaceConnector``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from connectors.contract import ConnectorConfig, MarketplaceConnector
from hub.settings import Settings

GROUP = "hub.connectors"

ConnectorFactory = Callable[[ConnectorConfig], MarketplaceConnector]


class UnknownMarketplace(LookupError):
    pass


def discovered() -> dict[str, EntryPoint]:
    """Every connector entry point installed now (read afresh: installs may change)."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def factory(name: str) -> ConnectorFactory:
    entries = discovered()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise UnknownMarketplace(f"no connector for marketplace {name!r} (installed: {known})")
    loaded: ConnectorFactory = entries[name].load()
    return loaded


def create(name: str, config: ConnectorConfig) -> MarketplaceConnector:
    return factory(name)(config)


def config_from_settings(
    name: str, settings: Settings, rate_limiter: Any = None, credential_store: Any = None
) -> ConnectorConfig:
    """App credentials for one marketplace, taken from ``HUB_*`` settings."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    credentials: dict[str, Any] = {}
    api_version: str | None = None
    if name == "shopify":
        credentials = {
            "client_id": settings.shopify_client_id,
            "client_secret": secret(settings.shopify_client_secret),
            "client_secret_previous": secret(settings.shopify_client_secret_previous),
        }
        api_version = settings.shopify_api_version
    elif name == "etsy":
        credentials = {
            "requests_per_second": settings.etsy_requests_per_second,
            "requests_per_day": settings.etsy_requests_per_day,
            "keystring": settings.etsy_keystring,
            "shared_secret": secret(settings.etsy_shared_secret),
            "shared_secret_previous": secret(settings.etsy_shared_secret_previous),
            "webhook_secret": secret(settings.etsy_webhook_secret),
            "webhook_secret_previous": secret(settings.etsy_webhook_secret_previous),
        }
    elif name == "woocommerce":
        credentials = {"requests_per_second": settings.woocommerce_requests_per_second}
    return ConnectorConfig(
        app_credentials={key: value for key, value in credentials.items() if value is not None},
        api_version=api_version,
        rate_limiter=rate_limiter,
        credential_store=credential_store,
        http_timeout_seconds=settings.http_timeout_seconds,
        allow_private_addresses=settings.allow_private_urls,
        max_response_bytes=settings.max_response_bytes,
    )
