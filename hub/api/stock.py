"""Blanks and their on-hand counts: the operator's stock, shared by every seller."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from hub.api.auth import admin_principal, container_of
from hub.api.params import MAX_COUNT, ApiInput, PathId
from hub.application import stock
from hub.bootstrap import Container
from hub.domain.catalog import Blank
from hub.domain.sellers import Principal

router = APIRouter(tags=["blanks"])


class BlankIn(ApiInput):
    code: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=255)
    on_hand: int = Field(0, ge=0, le=MAX_COUNT)


class StockChange(ApiInput):
    on_hand: int | None = Field(
        None, ge=0, le=MAX_COUNT, description="Absolute count (a stock take)."
    )
    delta: int | None = Field(
        None, ge=-MAX_COUNT, le=MAX_COUNT, description="Adjustment (a delivery, a write-off)."
    )


class BlankOut(BaseModel):
    id: int
    code: str
    name: str
    on_hand: int
    reserved: int
    free: int

    @classmethod
    def of(cls, blank: Blank) -> BlankOut:
        assert blank.id is not None
        return cls(
            id=blank.id,
            code=blank.code,
            name=blank.name,
            on_hand=blank.on_hand,
            reserved=blank.reserved,
            free=blank.free,
        )


@router.post("/blanks", status_code=201)
def create_blank(
    body: BlankIn,
    principal: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> BlankOut:
    with container.uow() as uow:
        blank = stock.create_blank(
            uow, principal, code=body.code, name=body.name, on_hand=body.on_hand
        )
        uow.commit()
    return BlankOut.of(blank)


@router.get("/blanks/{blank_id}")
def get_blank(
    blank_id: PathId,
    principal: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> BlankOut:
    with container.uow() as uow:
        return BlankOut.of(stock.get_blank(uow, principal, blank_id))


@router.post("/blanks/{blank_id}/stock")
def change_stock(
    blank_id: PathId,
    body: StockChange,
    principal: Principal = Depends(admin_principal),
    container: Container = Depends(container_of),
) -> BlankOut:
    with container.uow() as uow:
        blank = stock.set_on_hand(uow, principal, blank_id, on_hand=body.on_hand, delta=body.delta)
        uow.commit()
    return BlankOut.of(blank)
