"""Shops: list, connect, pause, resume, tune."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from hub.api.auth import container_of, current_principal
from hub.api.params import MAX_COUNT, ApiInput, BodyId, PathId
from hub.application import shops
from hub.bootstrap import Container
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace, Shop

router = APIRouter(tags=["shops"])


class ShopIn(ApiInput):
    seller_id: BodyId
    marketplace: Marketplace
    external_id: str = Field(min_length=1, max_length=255, description="Shop id or domain.")
    name: str = Field(min_length=1, max_length=255)
    stock_buffer: int = Field(0, ge=0, le=MAX_COUNT)
    max_listed_quantity: int | None = Field(None, ge=0, le=MAX_COUNT)
    api_base_url: str | None = Field(
        None, max_length=500, description="Override for sandboxes and tests."
    )
    location_id: str | None = Field(
        None, max_length=255, description="Shopify location to stock from."
    )
    credentials: dict[str, Any] | None = Field(
        None, description="Stored encrypted; never returned."
    )


class ShopTuning(ApiInput):
    stock_buffer: int | None = Field(None, ge=0, le=MAX_COUNT)
    max_listed_quantity: int | None = Field(None, ge=0, le=MAX_COUNT)


class ShopOut(BaseModel):
    id: int
    seller_id: int
    marketplace: Marketplace
    external_id: str
    name: str
    status: str
    stock_buffer: int
    max_listed_quantity: int
    api_base_url: str | None
    location_id: str | None
    has_credentials: bool
    created_at: datetime | None

    @classmethod
    def of(cls, shop: Shop) -> ShopOut:
        assert shop.id is not None
        return cls(
            id=shop.id,
            seller_id=shop.seller_id,
            marketplace=shop.marketplace,
            external_id=shop.external_id,
            name=shop.name,
            status=shop.status.value,
            stock_buffer=shop.stock_buffer,
            max_listed_quantity=shop.max_listed_quantity,
            api_base_url=shop.api_base_url,
            location_id=shop.location_id,
            has_credentials=bool(shop.credentials),
            created_at=shop.created_at,
        )


@router.get("/shops")
def list_shops(
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> list[ShopOut]:
    with container.uow() as uow:
        found = uow.shops.list(None if principal.is_admin else principal.seller_id)
    return [ShopOut.of(shop) for shop in found]


@router.post("/shops", status_code=201)
def create_shop(
    body: ShopIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ShopOut:
    with container.uow() as uow:
        shop = shops.create_shop(
            uow,
            shops.CreateShop(**body.model_dump()),
            principal,
            allow_private_urls=container.settings.allow_private_urls,
        )
        uow.commit()
    return ShopOut.of(shop)


@router.get("/shops/{shop_id}")
def get_shop(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ShopOut:
    with container.uow() as uow:
        return ShopOut.of(shops.load_shop(uow, shop_id, principal))


@router.patch("/shops/{shop_id}")
def tune_shop(
    shop_id: PathId,
    body: ShopTuning,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ShopOut:
    with container.uow() as uow:
        shop = shops.tune_shop(
            uow,
            shop_id,
            principal,
            stock_buffer=body.stock_buffer,
            max_listed_quantity=body.max_listed_quantity,
        )
        uow.commit()
    return ShopOut.of(shop)


@router.post("/shops/{shop_id}/pause")
def pause_shop(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ShopOut:
    with container.uow() as uow:
        shop = shops.set_shop_state(uow, shop_id, principal, paused=True)
        uow.commit()
    return ShopOut.of(shop)


@router.post("/shops/{shop_id}/resume")
def resume_shop(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ShopOut:
    with container.uow() as uow:
        shop = shops.set_shop_state(uow, shop_id, principal, paused=False)
        uow.commit()
    return ShopOut.of(shop)
