"""Orders: list, detail (cached), production status, review, fulfillments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.api.auth import container_of, current_principal
from hub.api.cached import serve_document
from hub.api.params import MAX_COUNT, ApiInput, BodyId, PathId, QueryId, parse_cursor
from hub.application import orders
from hub.application.cache_keys import order_key
from hub.bootstrap import Container
from hub.domain.orders import FulfillmentLine, Order, ProductionStatus
from hub.domain.sellers import Principal
from hub.infrastructure.read_models import OrderFilter

router = APIRouter(tags=["orders"])
MAX_PAGE = 200


class OrderSummary(BaseModel):
    id: int
    seller_id: int
    shop_id: int
    external_id: str
    external_number: str
    external_status: str
    status: ProductionStatus
    needs_review: bool
    currency: str
    total: Decimal
    placed_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class StatusChange(ApiInput):
    status: ProductionStatus


class FulfillmentLineIn(ApiInput):
    order_line_id: BodyId
    quantity: int = Field(ge=1, le=MAX_COUNT)


class FulfillmentIn(ApiInput):
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=255)
    tracking_url: str | None = Field(None, max_length=1000)
    lines: list[FulfillmentLineIn] = Field(min_length=1)


class OrderChanged(BaseModel):
    id: int
    status: ProductionStatus
    needs_review: bool
    version: int


class FulfillmentOut(BaseModel):
    id: int
    order: OrderChanged


@router.get("/orders")
async def list_orders(
    request: Request,
    shop_id: QueryId = None,
    status: ProductionStatus | None = None,
    updated_since: datetime | None = None,
    needs_review: bool | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    principal: Principal = Depends(current_principal),
) -> OrderPage:
    container: Container = request.app.state.container
    before_id = parse_cursor(cursor)
    query = OrderFilter(
        seller_id=None if principal.is_admin else principal.seller_id,
        shop_id=shop_id,
        status=status.value if status else None,
        needs_review=needs_review,
        updated_since=updated_since,
        before_id=before_id,
        limit=limit,
    )
    rows, next_id = await run_in_threadpool(container.read_model.list_orders, query)
    items: list[Any] = [OrderSummary.model_validate(row) for row in rows]
    return OrderPage(items=items, next_cursor=str(next_id) if next_id else None)


@router.get("/orders/{order_id}")
async def get_order(
    order_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    container: Container = request.app.state.container
    return await serve_document(
        container,
        principal,
        kind="order",
        key=order_key(order_id),
        load=lambda: container.read_model.order_document(order_id),
        missing=f"order {order_id} does not exist",
    )


def _changed(order: Order) -> OrderChanged:
    assert order.id is not None
    return OrderChanged(
        id=order.id, status=order.status, needs_review=order.needs_review, version=order.version
    )


@router.put("/orders/{order_id}/status")
def change_status(
    order_id: PathId,
    body: StatusChange,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> OrderChanged:
    with container.uow() as uow:
        order = orders.change_status(uow, order_id, body.status, principal)
        uow.commit()
    return _changed(order)


@router.delete("/orders/{order_id}/review")
def clear_review(
    order_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> OrderChanged:
    with container.uow() as uow:
        order = orders.clear_review(uow, order_id, principal)
        uow.commit()
    return _changed(order)


@router.post("/orders/{order_id}/fulfillments", status_code=201)
def create_fulfillment(
    order_id: PathId,
    body: FulfillmentIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> FulfillmentOut:
    command = orders.CreateFulfillment(
        order_id=order_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        tracking_url=body.tracking_url,
        lines=tuple(FulfillmentLine(line.order_line_id, line.quantity) for line in body.lines),
    )
    with container.uow() as uow:
        fulfillment, order = orders.create_fulfillment(uow, command, principal)
        uow.commit()
    assert fulfillment.id is not None
    return FulfillmentOut(id=fulfillment.id, order=_changed(order))
