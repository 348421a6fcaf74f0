"""Products with their variants and blanks; every change bumps what marketplaces must show."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hub.application.cache_keys import product_key
from hub.domain.catalog import BlankUsage, Product, Variant
from hub.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import IMAGE_KINDS, PRICE_KINDS, QUANTITY_KINDS


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal
    options: dict[str, str] = field(default_factory=dict)
    print_file_ref: str | None = None
    blanks: tuple[BlankUsage, ...] = ()


@dataclass(frozen=True)
class ProductSpec:
    seller_id: int
    title: str
    variants: tuple[VariantSpec, ...]
    description: str = ""
    currency: str = "USD"


def load_product(uow: UnitOfWork, product_id: int, principal: Principal) -> Product:
    product = uow.catalog.get_product(product_id)
    if product is None or not principal.can_see(product.seller_id):
        raise NotFound(f"product {product_id} does not exist")
    return product


def create_product(uow: UnitOfWork, spec: ProductSpec, principal: Principal) -> Product:
    if not principal.can_see(spec.seller_id):
        raise Forbidden("a seller key can only create products for its own seller")
    if uow.sellers.get(spec.seller_id) is None:
        raise NotFound(f"seller {spec.seller_id} does not exist")
    _check_spec(uow, spec)
    product = Product(
        id=None,
        seller_id=spec.seller_id,
        title=spec.title,
        description=spec.description,
        currency=spec.currency,
        variants=[_variant(v) for v in spec.variants],
        version=1,
    )
    product.check_skus_unique()
    product = uow.catalog.add_product(product)
    assert product.id is not None
    uow.changed(product_key(product.id), product.version)
    return product


def update_product(
    uow: UnitOfWork, product_id: int, spec: ProductSpec, principal: Principal
) -> Product:
    """Replace the product's description and variants, matched by SKU.

    A variant that is bound to a shop cannot be dropped: unbind it first, so no marketplace
    listing is left pointing at nothing.
    """
    product = load_product(uow, product_id, principal)
    if spec.seller_id != product.seller_id:
        raise InvalidInput(f"product {product_id}: seller_id cannot change")
    _check_spec(uow, spec)
    uow.lock(product_key(product_id))
    current = {variant.sku: variant for variant in product.variants}
    wanted = {v.sku: v for v in spec.variants}
    for sku, variant in current.items():
        if sku not in wanted and variant.id is not None and _is_bound(uow, variant.id):
            raise Conflict(
                f"product {product_id}: variant {sku!r} is bound to a shop; delete its bindings "
                "before removing it"
            )
    price_changed: list[int] = []
    stock_changed: list[int] = []
    image_changed: list[int] = []
    variants: list[Variant] = []
    for v in spec.variants:
        old = current.get(v.sku)
        new = _variant(v)
        if old is not None:
            new.id = old.id
            assert old.id is not None
            if old.price != new.price:
                price_changed.append(old.id)
            if sorted(old.blanks, key=_blank_id) != sorted(new.blanks, key=_blank_id):
                stock_changed.append(old.id)
            if old.print_file_ref != new.print_file_ref:
                image_changed.append(old.id)
        variants.append(new)
    product.title = spec.title
    product.description = spec.description
    product.currency = spec.currency
    product.variants = variants
    product.check_skus_unique()
    product.version += 1
    uow.catalog.save_product(product)
    for kinds, ids in (
        (PRICE_KINDS, price_changed),
        (QUANTITY_KINDS, stock_changed),
        (IMAGE_KINDS, image_changed),
    ):
        if ids:
            uow.bindings.bump(kinds, variant_ids=ids)
    uow.changed(product_key(product_id), product.version)
    return product


def _is_bound(uow: UnitOfWork, variant_id: int) -> bool:
    return variant_id in uow.bindings.bound_variants([variant_id])


def _blank_id(use: BlankUsage) -> int:
    return use.blank_id


def _variant(spec: VariantSpec) -> Variant:
    return Variant(
        id=None,
        sku=spec.sku,
        price=spec.price,
        options=dict(spec.options),
        print_file_ref=spec.print_file_ref,
        blanks=list(spec.blanks),
    )


def _check_spec(uow: UnitOfWork, spec: ProductSpec) -> None:
    if not spec.variants:
        raise InvalidInput(f"product {spec.title!r}: needs at least one variant")
    for variant in spec.variants:
        if not variant.sku.strip():
            raise InvalidInput(f"product {spec.title!r}: a variant has an empty SKU")
        if variant.price < 0:
            raise InvalidInput(
                f"product {spec.title!r}: variant {variant.sku!r} has a negative price"
            )
        ids = [use.blank_id for use in variant.blanks]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"variant {variant.sku!r}: a blank is listed twice")
    wanted = {use.blank_id for v in spec.variants for use in v.blanks}
    missing = wanted - uow.stock.existing_blank_ids(wanted)
    if missing:
        raise InvalidInput(f"product {spec.title!r}: unknown blanks {sorted(missing)}")
