"""Products with their variants and the blanks each variant consumes."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from hub.api.auth import container_of, current_principal
from hub.api.cached import serve_document
from hub.application import catalog
from hub.application.cache_keys import product_key
from hub.bootstrap import Container
from hub.domain.catalog import BlankUsage, Product
from hub.domain.sellers import Principal

router = APIRouter(tags=["products"])


class BlankUsageIn(BaseModel):
    blank_id: int
    quantity_per_unit: int = Field(1, ge=1)


class VariantIn(BaseModel):
    sku: str = Field(min_length=1, max_length=255)
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=6)
    options: dict[str, str] = Field(default_factory=dict)
    print_file_ref: str | None = None
    blanks: list[BlankUsageIn] = Field(default_factory=list)


class ProductIn(BaseModel):
    seller_id: int
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    currency: str = Field("USD", min_length=3, max_length=3)
    variants: list[VariantIn] = Field(min_length=1)

    def spec(self) -> catalog.ProductSpec:
        return catalog.ProductSpec(
            seller_id=self.seller_id,
            title=self.title,
            description=self.description,
            currency=self.currency.upper(),
            variants=tuple(
                catalog.VariantSpec(
                    sku=v.sku,
                    price=v.price,
                    options=v.options,
                    print_file_ref=v.print_file_ref,
                    blanks=tuple(BlankUsage(b.blank_id, b.quantity_per_unit) for b in v.blanks),
                )
                for v in self.variants
            ),
        )


class ProductRef(BaseModel):
    id: int
    version: int
    variant_ids: dict[str, int]

    @classmethod
    def of(cls, product: Product) -> ProductRef:
        assert product.id is not None
        return cls(
            id=product.id,
            version=product.version,
            variant_ids={v.sku: v.id or 0 for v in product.variants},
        )


@router.post("/products", status_code=201)
def create_product(
    body: ProductIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ProductRef:
    with container.uow() as uow:
        product = catalog.create_product(uow, body.spec(), principal)
        uow.commit()
    return ProductRef.of(product)


@router.put("/products/{product_id}")
def update_product(
    product_id: int,
    body: ProductIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ProductRef:
    with container.uow() as uow:
        product = catalog.update_product(uow, product_id, body.spec(), principal)
        uow.commit()
    return ProductRef.of(product)


@router.get("/products/{product_id}")
async def get_product(
    product_id: int, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    container: Container = request.app.state.container
    return await serve_document(
        container,
        principal,
        kind="product",
        key=product_key(product_id),
        load=lambda: container.read_model.product_document(product_id),
        missing=f"product {product_id} does not exist",
    )
