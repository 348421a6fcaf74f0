"""A shop's bindings: which of our variants is which listing there, and what it should show."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from hub.api.auth import container_of, current_principal
from hub.api.params import ApiInput, BodyId, PathId
from hub.application import bindings
from hub.bootstrap import Container
from hub.domain.sellers import Principal

router = APIRouter(tags=["bindings"])


class BindingIn(ApiInput):
    variant_id: BodyId
    external_listing_id: str | None = Field(None, max_length=255)
    external_variant_id: str | None = Field(None, max_length=255)
    external_inventory_item_id: str | None = Field(None, max_length=255)


class PushStateOut(BaseModel):
    desired_version: int
    pushed_version: int


class BindingOut(BaseModel):
    id: int
    variant_id: int
    sku: str
    external_listing_id: str | None
    external_variant_id: str | None
    external_inventory_item_id: str | None
    available_quantity: int
    push: dict[str, PushStateOut]
    last_pushed_quantity: int | None
    last_pushed_price: Decimal | None
    last_pushed_image_keys: list[str] | None
    listed_price: Decimal | None = Field(
        None, description="The price the shop's rule decided for this listing (what is pushed)."
    )
    price_review: str | None = Field(
        None, description="Why the price needs a person: the floor a cost or rate change broke."
    )


@router.get("/shops/{shop_id}/bindings")
def list_bindings(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> list[BindingOut]:
    with container.uow() as uow:
        views = bindings.list_bindings(uow, shop_id, principal)
    return [
        BindingOut(
            id=view.binding.id or 0,
            variant_id=view.binding.variant_id,
            sku=view.sku,
            external_listing_id=view.binding.external_listing_id,
            external_variant_id=view.binding.external_variant_id,
            external_inventory_item_id=view.binding.external_inventory_item_id,
            available_quantity=view.available_quantity,
            push={
                kind.value: PushStateOut(
                    desired_version=state.desired_version, pushed_version=state.pushed_version
                )
                for kind, state in view.binding.push_states.items()
            },
            last_pushed_quantity=view.binding.last_pushed_quantity,
            last_pushed_price=view.binding.last_pushed_price,
            last_pushed_image_keys=view.binding.last_pushed_image_keys,
            listed_price=view.binding.listed_price,
            price_review=view.binding.price_review,
        )
        for view in views
    ]


@router.put("/shops/{shop_id}/bindings")
def put_bindings(
    shop_id: PathId,
    body: list[BindingIn],
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> list[BindingOut]:
    """Create or change the listed bindings (others are left alone)."""
    with container.uow() as uow:
        bindings.put_bindings(
            uow, shop_id, [bindings.BindingSpec(**item.model_dump()) for item in body], principal
        )
        uow.commit()
    return list_bindings(shop_id, principal, container)


@router.delete("/shops/{shop_id}/bindings/{variant_id}", status_code=204)
def delete_binding(
    shop_id: PathId,
    variant_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> Response:
    with container.uow() as uow:
        bindings.delete_binding(uow, shop_id, variant_id, principal)
        uow.commit()
    return Response(status_code=204)
