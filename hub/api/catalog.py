"""Products with their variants and the blanks each variant consumes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.api.auth import container_of, current_principal
from hub.api.cached import serve_document
from hub.api.params import MAX_COUNT, MAX_ID, ApiInput, BodyId, PathId
from hub.application import catalog
from hub.application.cache_keys import product_key
from hub.application.catalog_import import (
    CatalogDocument,
    ImportReport,
    import_catalog,
    parse_json,
)
from hub.bootstrap import Container
from hub.domain.catalog import BlankUsage, Product
from hub.domain.sellers import Principal

router = APIRouter(tags=["products"])


class BlankUsageIn(ApiInput):
    blank_id: BodyId
    quantity_per_unit: int = Field(1, ge=1, le=MAX_COUNT)


class VariantIn(ApiInput):
    sku: str = Field(min_length=1, max_length=255)
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=6)
    cost: Decimal | None = Field(
        None,
        ge=0,
        max_digits=14,
        decimal_places=6,
        description="Our production cost per unit, in the product's currency; price rules "
        "derive shop prices and margin floors from it (none: no derived price).",
    )
    options: dict[str, str] = Field(default_factory=dict)
    print_file_ref: str | None = Field(None, max_length=500)
    blanks: list[BlankUsageIn] = Field(default_factory=list)


class ProductIn(ApiInput):
    seller_id: BodyId
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
                    cost=v.cost,
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
    product_id: PathId,
    body: ProductIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ProductRef:
    product = container.write(
        lambda uow: catalog.update_product(uow, product_id, body.spec(), principal)
    )
    return ProductRef.of(product)


@router.get("/products/{product_id}")
async def get_product(
    product_id: PathId, request: Request, principal: Principal = Depends(current_principal)
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


def run_catalog_import(
    container: Container,
    document: CatalogDocument,
    principal: Principal,
    *,
    dry_run: bool = False,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """One transaction: every blank and product of the document, or nothing (``hub catalog
    import`` runs the same)."""
    with container.uow() as uow:
        report = import_catalog(
            uow,
            document,
            principal,
            uow.stock,
            dry_run=dry_run,
            progress=progress,
        )
        if not dry_run:
            uow.commit()
    return report


class ImportedProduct(BaseModel):
    title: str
    id: int | None
    skus: list[str]


class SkippedProduct(BaseModel):
    title: str
    skus: list[str]
    reason: str


class CatalogImportOut(BaseModel):
    seller_id: int
    dry_run: bool
    blanks_created: list[str]
    blanks_reused: list[str]
    products_created: list[ImportedProduct]
    products_skipped: list[SkippedProduct]
    errors: list[str]


_TEXT = r"\S"  # not blank; NUL characters are refused too (PostgreSQL text cannot hold one)
_AMOUNT: dict[str, Any] = {  # exact decimals: at most 14 digits before the point, 6 after
    "anyOf": [
        {"type": "number", "minimum": 0, "exclusiveMaximum": 10**14},
        {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,6})?$"},
    ]
}
# What ``catalog_import.parse_document`` accepts, so generated clients and fuzzers send it.
IMPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["seller_id"],
    "additionalProperties": False,
    "properties": {
        "seller_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "blanks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "maxLength": 100, "pattern": _TEXT},
                    "name": {"type": "string", "maxLength": 255, "pattern": _TEXT},
                    "on_hand": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                },
            },
        },
        "products": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "variants"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string", "maxLength": 500, "pattern": _TEXT},
                    "description": {"type": "string"},
                    "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
                    "variants": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["sku", "price"],
                            "additionalProperties": False,
                            "properties": {
                                "sku": {"type": "string", "maxLength": 255, "pattern": _TEXT},
                                "price": _AMOUNT,
                                "cost": {"anyOf": [*_AMOUNT["anyOf"], {"type": "null"}]},
                                "options": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "print_file_ref": {"type": ["string", "null"], "maxLength": 500},
                                "blanks": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["code"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "code": {"type": "string"},
                                            "quantity": {
                                                "type": "integer",
                                                "minimum": 1,
                                                "maximum": MAX_COUNT,
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@router.post(
    "/catalog/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": IMPORT_SCHEMA}},
        }
    },
)
async def import_catalog_document(
    request: Request,
    dry_run: bool = False,
    principal: Principal = Depends(current_principal),
) -> CatalogImportOut:
    """Seed a catalog: the missing blanks (by code; creating one needs the admin key) and the
    products whose SKUs the seller does not have yet, in one transaction. Products with known
    SKUs are skipped and reported; any problem in the document answers 422 naming the item and
    writes nothing. ``dry_run`` reports what would happen, problems included, and writes
    nothing."""
    container: Container = request.app.state.container
    body = await request.body()

    def run() -> ImportReport:  # parsing a large document is CPU work: off the event loop
        return run_catalog_import(container, parse_json(body), principal, dry_run=dry_run)

    report = await run_in_threadpool(run)
    return CatalogImportOut.model_validate(report.as_dict())
