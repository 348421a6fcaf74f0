"""Sellers and their API keys: the operator's endpoints."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from hub.api.auth import admin_principal, container_of
from hub.api.params import ApiInput, PathId
from hub.application import sellers
from hub.bootstrap import Container
from hub.domain.sellers import Principal

router = APIRouter(tags=["sellers"])


class SellerIn(ApiInput):
    name: str = Field(min_length=1, max_length=200)


class SellerOut(BaseModel):
    id: int
    name: str
    created_at: datetime | None


class SellerCreated(SellerOut):
    api_key: str = Field(description="Shown once; only its hash is stored.")


class ApiKeyOut(BaseModel):
    seller_id: int
    api_key: str = Field(description="Shown once; only its hash is stored.")


@router.post("/sellers", status_code=201)
def create_seller(
    body: SellerIn,
    _admin: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> SellerCreated:
    with container.uow() as uow:
        seller, issued = sellers.create_seller(uow, body.name)
        uow.commit()
    assert seller.id is not None
    return SellerCreated(
        id=seller.id, name=seller.name, created_at=seller.created_at, api_key=issued.key
    )


@router.get("/sellers")
def list_sellers(
    _admin: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> list[SellerOut]:
    with container.uow() as uow:
        found = uow.sellers.list()
    return [SellerOut(id=s.id or 0, name=s.name, created_at=s.created_at) for s in found]


@router.post("/sellers/{seller_id}/api-keys", status_code=201)
def issue_api_key(
    seller_id: PathId,
    _admin: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> ApiKeyOut:
    with container.uow() as uow:
        issued = sellers.issue_api_key(uow, seller_id)
        uow.commit()
    return ApiKeyOut(seller_id=issued.seller_id, api_key=issued.key)
