"""Connecting, pausing and tuning shops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.domain.addresses import url_problem
from hub.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import QUANTITY_KINDS, Marketplace, Shop


@dataclass(frozen=True)
class CreateShop:
    seller_id: int
    marketplace: Marketplace
    external_id: str
    name: str
    stock_buffer: int = 0
    max_listed_quantity: int | None = None
    api_base_url: str | None = None
    location_id: str | None = None
    credentials: dict[str, Any] | None = None


def load_shop(uow: UnitOfWork, shop_id: int, principal: Principal) -> Shop:
    shop = uow.shops.get(shop_id)
    if shop is None:
        raise NotFound(f"shop {shop_id} does not exist")
    if not principal.can_see(shop.seller_id):
        # Same answer as a missing shop: a seller learns nothing about other sellers' ids.
        raise NotFound(f"shop {shop_id} does not exist")
    return shop


def create_shop(
    uow: UnitOfWork,
    command: CreateShop,
    principal: Principal,
    *,
    allow_private_urls: bool = True,
) -> Shop:
    """A shop connected by hand (credentials given). The entry points pass
    ``allow_private_urls=settings.allow_private_urls`` (false in production), so an
    ``api_base_url`` naming a loopback or private address, or plain http, is refused here with
    a clear message; in-process callers without settings (tests, benchmarks against local
    sandboxes) keep the default. Either way the connectors' outbound guard refuses such
    addresses on every request unless HUB_ALLOW_PRIVATE_URLS is set."""
    if not principal.can_see(command.seller_id):
        raise Forbidden("a seller key can only create shops for its own seller")
    check_api_base_url(command.api_base_url, allow_private_urls=allow_private_urls)
    if uow.sellers.get(command.seller_id) is None:
        raise NotFound(f"seller {command.seller_id} does not exist")
    _check_limits(command.stock_buffer, command.max_listed_quantity)
    existing = uow.shops.find_by_external(command.marketplace, command.external_id)
    if existing is not None:
        raise Conflict(
            f"{command.marketplace.value} shop {command.external_id!r} is already "
            f"connected as shop {existing.id}"
        )
    shop = Shop(
        id=None,
        seller_id=command.seller_id,
        marketplace=command.marketplace,
        external_id=command.external_id,
        name=command.name,
        stock_buffer=command.stock_buffer,
        api_base_url=command.api_base_url,
        location_id=command.location_id,
        credentials=dict(command.credentials or {}),
    )
    if command.max_listed_quantity is not None:
        shop.max_listed_quantity = command.max_listed_quantity
    return uow.shops.add(shop)


def set_shop_state(uow: UnitOfWork, shop_id: int, principal: Principal, *, paused: bool) -> Shop:
    shop = load_shop(uow, shop_id, principal)
    if paused:
        shop.pause()
    else:
        shop.resume()
    uow.shops.save(shop)
    if not paused:
        # Pushes skipped while paused left the bindings due but their trigger taken: queue
        # them again (values the shop already shows are recorded without a call).
        uow.bindings.bump(QUANTITY_KINDS, shop_id=shop_id)
    return shop


def tune_shop(
    uow: UnitOfWork,
    shop_id: int,
    principal: Principal,
    *,
    stock_buffer: int | None,
    max_listed_quantity: int | None,
) -> Shop:
    """Change the buffer or the cap; every quantity the shop shows may change with them."""
    shop = load_shop(uow, shop_id, principal)
    _check_limits(stock_buffer or 0, max_listed_quantity)
    changed = False
    if stock_buffer is not None and stock_buffer != shop.stock_buffer:
        shop.stock_buffer, changed = stock_buffer, True
    if max_listed_quantity is not None and max_listed_quantity != shop.max_listed_quantity:
        shop.max_listed_quantity, changed = max_listed_quantity, True
    if changed:
        uow.shops.save(shop)
        uow.bindings.bump(QUANTITY_KINDS, shop_id=shop_id)
    return shop


def check_api_base_url(api_base_url: str | None, *, allow_private_urls: bool) -> None:
    """``InvalidInput`` unless the URL is absolute http(s) and, without the sandbox setting,
    https to a host that is no loopback, private or other non-public address literal."""
    if api_base_url is None:
        return
    problem = url_problem(api_base_url, allow_private=allow_private_urls, what="api_base_url")
    if problem is not None:
        raise InvalidInput(problem)


def _check_limits(buffer: int, maximum: int | None) -> None:
    if buffer < 0:
        raise InvalidInput("stock_buffer cannot be negative")
    if maximum is not None and maximum < 0:
        raise InvalidInput("max_listed_quantity cannot be negative")
