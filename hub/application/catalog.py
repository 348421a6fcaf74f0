"""Products with their variants and blanks; every change bumps what marketplaces must show."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hub.application.cache_keys import product_key
from hub.application.pricing import check_storable, reprice_variants
from hub.domain.catalog import BlankUsage, Product, Variant
from hub.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.pricing import MINOR_DIGITS, minor_unit
from hub.domain.sellers import Principal
from hub.domain.shops import IMAGE_KINDS, QUANTITY_KINDS


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal
    options: dict[str, str] = field(default_factory=dict)
    print_file_ref: str | None = None
    blanks: tuple[BlankUsage, ...] = ()
    cost: Decimal | None = None  # our production cost; without it no shop price is derived


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
    listing is left pointing at nothing. A changed retail price or cost reprices the variant's
    bindings in shops with a price rule (``pricing.reprice_variants``), a changed currency every
    variant's.
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
            if old.price != new.price or old.cost != new.cost or product.currency != spec.currency:
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
    # Prices first: repricing takes the shops' binding locks, which every writer takes before
    # the push triggers and state rows that the bumps below lock.
    if price_changed:
        reprice_variants(uow, price_changed)
    for kinds, ids in (
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
        cost=spec.cost,
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
        try:
            check_storable(variant.price, "price")
        except InvalidInput as error:
            raise InvalidInput(
                f"product {spec.title!r}: variant {variant.sku!r}: {error.message}"
            ) from None
        if variant.cost is not None:
            _check_cost(spec, variant.sku, variant.cost)
        ids = [use.blank_id for use in variant.blanks]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"variant {variant.sku!r}: a blank is listed twice")
    wanted = {use.blank_id for v in spec.variants for use in v.blanks}
    missing = wanted - uow.stock.existing_blank_ids(wanted)
    if missing:
        raise InvalidInput(f"product {spec.title!r}: unknown blanks {sorted(missing)}")


def _check_cost(spec: ProductSpec, sku: str, cost: Decimal) -> None:
    where = f"product {spec.title!r}: variant {sku!r}"
    if not cost.is_finite() or cost < 0:
        raise InvalidInput(f"{where}: cost must be a number >= 0, got {cost}")
    try:
        check_storable(cost, "cost")
    except InvalidInput as error:
        raise InvalidInput(f"{where}: {error.message}") from None
    if spec.currency in MINOR_DIGITS and cost != cost.quantize(minor_unit(spec.currency)):
        raise InvalidInput(
            f"{where}: cost {cost:f} {spec.currency} is finer than the currency's minor unit "
            f"({minor_unit(spec.currency):f})"
        )
