"""The FastAPI application. Adapters are built in the lifespan, after any fork."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hub.api import (
    bindings,
    catalog,
    events,
    health,
    images,
    jobs,
    media,
    metrics,
    onboarding,
    orders,
    pricing,
    sellers,
    shops,
    stock,
    webhooks,
)
from hub.api.auth import Authenticator
from hub.api.errors import install_error_handlers, install_openapi
from hub.api.limits import BodySizeLimit
from hub.bootstrap import Container, bootstrap, media_url_secret
from hub.infrastructure.logs import configure_logging
from hub.infrastructure.migrations import upgrade
from hub.settings import Settings
from imaging import render as renderer
from sync.infrastructure.events_async import AsyncEventStore
from sync.infrastructure.storage import build_object_store

UPLOAD_PATHS = (re.compile(r"^/products/\d+/images$"),)


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the app; pass a container to share one (tests), or settings to build one at start."""
    settings = container.settings if container else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container is None:
            configure_logging(settings.log_level)
            sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        owned = container is None
        built = container or bootstrap(settings)
        if owned and settings.is_sqlite:
            upgrade(built.engine)  # embedded mode sets itself up; PostgreSQL runs `hub db upgrade`
        app.state.container = built
        app.state.authenticator = Authenticator(built)
        app.state.webhook_connectors = webhooks.WebhookConnectors(built)
        app.state.authorizers = onboarding.Authorizers(built)
        app.state.event_store = None
        app.state.object_store = build_object_store(built.settings)
        app.state.media_url_secret = media_url_secret(built.settings)
        renderer.configure(built.settings.max_image_pixels, built.settings.image_render_concurrency)
        if not built.settings.is_sqlite:
            app.state.event_store = AsyncEventStore(
                built.settings.resolved_database_url,
                schema=built.settings.db_schema,
                max_size=built.settings.db_pool_size,
                connect_timeout_seconds=built.settings.db_connect_timeout_seconds,
                pool_timeout_seconds=built.settings.db_pool_timeout_seconds,
            )
            await app.state.event_store.open()
        try:
            yield
        finally:
            app.state.webhook_connectors.close()
            app.state.authorizers.close()
            if app.state.event_store is not None:
                await app.state.event_store.close()
            await built.reader.settle()
            aclose = getattr(built.cache, "aclose", None)
            if aclose is not None:
                await aclose()
            if owned:
                built.close()

    app = FastAPI(
        title="marketplace-hub",
        version="0.1.0",
        description="Orders in from Shopify, Etsy and WooCommerce; stock, images, tracking out.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    # Matching walks the routes in order, and each route passed costs a few microseconds:
    # the hot paths (order and product reads, webhook ingress) first. No two routers share a
    # path, so the order changes nothing else.
    for module in (
        orders,
        catalog,
        webhooks,
        health,
        metrics,
        sellers,
        onboarding,
        shops,
        images,
        media,
        stock,
        jobs,
        bindings,
        pricing,
        events,
    ):
        app.include_router(module.router)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    return app
