"""A shop's price rule, the prices it derives, and pushing them again.

Money is exact both ways: request bodies are read with every JSON number as a ``Decimal``
(never through a binary float), strings such as ``"12.50"`` are accepted as well, and every
amount in a response is a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from hub.api.auth import container_of, current_principal
from hub.api.params import ApiInput, PathId
from hub.application import pricing
from hub.bootstrap import Container
from hub.domain.pricing import Rounding, ShopPriceRule, quantize
from hub.domain.sellers import Principal


class ExactJsonRequest(Request):
    """A request whose JSON numbers are Decimals: 0.1 stays 0.1, 19 digits stay 19 digits."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class ExactJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact


router = APIRouter(tags=["pricing"], route_class=ExactJsonRoute)

MONEY_HELP = 'A decimal as a string ("12.50") or a JSON number, read exactly.'


class PriceRuleIn(ApiInput):
    currency: str = Field(min_length=3, max_length=3, description="The shop's currency.")
    base_currency: str = Field(
        min_length=3, max_length=3, description="The currency of our base prices it converts."
    )
    conversion_rate: Decimal = Field(
        description="Shop-currency units per base-currency unit (1 when they are the same); "
        "at most 6 decimal places. " + MONEY_HELP
    )
    markup_percent: Decimal = Field(Decimal(0), description=MONEY_HELP)
    markup_fixed: Decimal = Field(Decimal(0), description=MONEY_HELP)
    fee_percent: Decimal = Field(Decimal(0), description=MONEY_HELP)
    fee_fixed: Decimal = Field(Decimal(0), description="Per order line. " + MONEY_HELP)
    rounding: Rounding = Rounding.NONE

    def spec(self) -> pricing.PriceRuleSpec:
        return pricing.PriceRuleSpec(
            currency=self.currency.upper(),
            base_currency=self.base_currency.upper(),
            conversion_rate=self.conversion_rate,
            markup_percent=self.markup_percent,
            markup_fixed=self.markup_fixed,
            fee_percent=self.fee_percent,
            fee_fixed=self.fee_fixed,
            rounding=self.rounding.value,
        )


class RateIn(ApiInput):
    conversion_rate: Decimal = Field(description=MONEY_HELP)


class PriceRuleOut(BaseModel):
    """The rule with every amount as a string; fixed amounts in the shop currency's places."""

    shop_id: int
    currency: str
    base_currency: str
    conversion_rate: str
    markup_percent: str
    markup_fixed: str
    fee_percent: str
    fee_fixed: str
    rounding: Rounding
    version: int
    updated_at: str | None

    @classmethod
    def of(cls, stored: ShopPriceRule) -> PriceRuleOut:
        rule = stored.rule
        return cls(
            shop_id=stored.shop_id,
            currency=rule.currency,
            base_currency=rule.base_currency,
            conversion_rate=money(rule.conversion_rate),
            markup_percent=money(rule.markup_percent),
            markup_fixed=money(quantize(rule.markup_fixed, rule.currency)),
            fee_percent=money(rule.fee_percent),
            fee_fixed=money(quantize(rule.fee_fixed, rule.currency)),
            rounding=rule.rounding,
            version=stored.version,
            updated_at=stored.updated_at.isoformat() if stored.updated_at else None,
        )


class RepriceOut(BaseModel):
    changed: int = Field(description="Bindings with a new listed price.")
    queued: int = Field(description="Bindings whose price push was queued.")
    flagged: list[int] = Field(description="Binding ids left at their price for review.")
    unchanged: int
    no_cost: int
    skipped: int

    @classmethod
    def of(cls, report: pricing.RepriceReport) -> RepriceOut:
        return cls(
            changed=len(report.changed),
            queued=report.queued,
            flagged=report.flagged,
            unchanged=report.unchanged,
            no_cost=report.no_cost,
            skipped=report.skipped,
        )


class PriceRuleChangeOut(BaseModel):
    rule: PriceRuleOut
    repriced: RepriceOut


class PricePreviewOut(BaseModel):
    binding_id: int
    variant_id: int
    sku: str
    currency: str | None
    current: str | None
    last_pushed: str | None
    new: str | None
    floor: str | None
    status: pricing.PriceStatus
    reason: str | None


def money(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


def _change(change: pricing.PriceRuleChange) -> PriceRuleChangeOut:
    return PriceRuleChangeOut(
        rule=PriceRuleOut.of(change.rule), repriced=RepriceOut.of(change.report)
    )


@router.get("/shops/{shop_id}/price-rule")
def get_price_rule(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> PriceRuleOut:
    with container.uow() as uow:
        return PriceRuleOut.of(pricing.get_price_rule(uow, shop_id, principal))


@router.put("/shops/{shop_id}/price-rule")
def put_price_rule(
    shop_id: PathId,
    body: PriceRuleIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> PriceRuleChangeOut:
    """Set the whole rule and reprice the shop's bindings; 422 naming every variant (with its
    price, floor, cost, rate and fees) that it would sell below the margin floor."""
    change = container.write(
        lambda uow: pricing.set_price_rule(uow, shop_id, principal, body.spec())
    )
    return _change(change)


@router.put("/shops/{shop_id}/price-rule/rate")
def put_conversion_rate(
    shop_id: PathId,
    body: RateIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> PriceRuleChangeOut:
    """Change the rule's conversion rate. Never refused for the floor: a binding it would push
    below its floor keeps its price and is flagged for review (``flagged``)."""
    change = container.write(
        lambda uow: pricing.set_conversion_rate(uow, shop_id, principal, body.conversion_rate)
    )
    return _change(change)


@router.get("/shops/{shop_id}/prices/preview")
def preview_prices(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> list[PricePreviewOut]:
    """Per binding: the current price and the one the shop's rule gives; writes nothing."""
    with container.uow() as uow:
        return _preview(pricing.preview_prices(uow, shop_id, principal))


@router.post("/shops/{shop_id}/prices/preview")
def preview_proposed_rule(
    shop_id: PathId,
    body: PriceRuleIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> list[PricePreviewOut]:
    """What the rule in the body would list, before it is set (``below_floor``: it would be
    refused); stores nothing."""
    with container.uow() as uow:
        return _preview(pricing.preview_prices(uow, shop_id, principal, body.spec()))


def _preview(rows: list[pricing.PricePreviewRow]) -> list[PricePreviewOut]:
    return [
        PricePreviewOut(
            binding_id=row.binding_id,
            variant_id=row.variant_id,
            sku=row.sku,
            currency=row.currency,
            current=money(row.current),
            last_pushed=money(row.last_pushed),
            new=money(row.new),
            floor=money(row.floor),
            status=row.status,
            reason=row.reason,
        )
        for row in rows
    ]


@router.post("/shops/{shop_id}/prices/resync", status_code=202)
def resync_prices(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> RepriceOut:
    """Reprice as after a rate change, then queue a price push for every listed binding."""
    report = container.write(lambda uow: pricing.resync_prices(uow, shop_id, principal))
    return RepriceOut.of(report)
