"""Seeding a catalog from one JSON document: blanks by code, products by SKU, in one transaction.

The document (``hub catalog import FILE``, ``POST /catalog/import``)::

    {"seller_id": 1,
     "blanks": [{"code": "TEE-M", "name": "Tee M", "on_hand": 40}],
     "products": [{"title": "Sunrise tee", "description": "", "currency": "USD",
                   "variants": [{"sku": "SUN-M", "price": "20.00", "cost": "7.40",
                                 "options": {"size": "M"},
                                 "blanks": [{"code": "TEE-M", "quantity": 1}]}]}]}

``cost`` (our production cost, optional) is what shop price rules derive a listed price and its
margin floor from; a variant without one gets no derived price.

A blank whose code exists is reused and its on-hand count left alone (a stock take is
``POST /blanks/{id}/stock``). A product with a SKU the seller has already is skipped and
reported, never duplicated, so importing the same file twice is harmless. Any problem in the
document (bad JSON, an unknown blank code, negative stock, a SKU twice) is reported by item and
nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from hub.application import catalog, stock
from hub.domain.catalog import BlankUsage
from hub.domain.errors import Forbidden, InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal

MAX_REPORTED_ERRORS = 50
BLANK_FIELDS = frozenset({"code", "name", "on_hand"})
PRODUCT_FIELDS = frozenset({"title", "description", "currency", "variants"})
VARIANT_FIELDS = frozenset({"sku", "price", "cost", "options", "print_file_ref", "blanks"})
USAGE_FIELDS = frozenset({"code", "quantity"})
COST_UNIT = Decimal("0.000001")  # costs are stored with six decimal places at most
COST_LIMIT = Decimal(10) ** 14
MAX_ID = 2**63 - 1  # ids are BIGINT
MAX_COUNT = 2**31 - 1  # counts are INTEGER on PostgreSQL


class BlankCodes(Protocol):
    """Existing blanks by code, read in the importing transaction."""

    def ids_by_code(self, codes: Iterable[str]) -> dict[str, int]: ...


@dataclass(frozen=True)
class BlankItem:
    code: str
    name: str
    on_hand: int


@dataclass(frozen=True)
class VariantItem:
    sku: str
    price: Decimal
    options: Mapping[str, str]
    print_file_ref: str | None
    blanks: tuple[tuple[str, int], ...]  # (blank code, quantity per unit)
    cost: Decimal | None = None


@dataclass(frozen=True)
class ProductItem:
    title: str
    description: str
    currency: str
    variants: tuple[VariantItem, ...]

    @property
    def skus(self) -> list[str]:
        return [variant.sku for variant in self.variants]


@dataclass(frozen=True)
class CatalogDocument:
    seller_id: int
    blanks: tuple[BlankItem, ...]
    products: tuple[ProductItem, ...]


@dataclass
class ImportReport:
    seller_id: int
    dry_run: bool = False
    blanks_created: list[str] = field(default_factory=list)
    blanks_reused: list[str] = field(default_factory=list)
    products_created: list[dict[str, Any]] = field(default_factory=list)
    products_skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seller_id": self.seller_id,
            "dry_run": self.dry_run,
            "blanks_created": list(self.blanks_created),
            "blanks_reused": list(self.blanks_reused),
            "products_created": list(self.products_created),
            "products_skipped": list(self.products_skipped),
            "errors": list(self.errors),
        }


# --- The document, checked without a database ------------------------------------------------


def parse_json(text: str | bytes) -> CatalogDocument:
    """The document from JSON text (prices read as exact decimals)."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"the catalog is not valid JSON: {error}") from error
    return parse_document(data)


def parse_document(data: Any) -> CatalogDocument:
    """Check every item and name each problem; raises ``InvalidInput`` listing them all."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise InvalidInput("the catalog must be a JSON object with seller_id, blanks and products")
    _unknown_fields(data, frozenset({"seller_id", "blanks", "products"}), "the catalog", problems)
    nul = _nul_at(data, "")
    if nul is not None:  # PostgreSQL text cannot hold one
        problems.append(f"{nul or 'the catalog'}: text may not contain NUL characters (\\u0000)")
    seller_id: Any = data.get("seller_id")
    if not _is_int(seller_id) or not 1 <= seller_id <= MAX_ID:
        problems.append("seller_id: must be a seller's id (a positive integer)")
        seller_id = 0
    blanks = _blanks(data.get("blanks", []), problems)
    products = _products(data.get("products", []), problems)
    _no_duplicate_skus(products, problems)
    if problems:
        raise InvalidInput(_summary(problems))
    return CatalogDocument(seller_id=seller_id, blanks=blanks, products=products)


def _blanks(raw: Any, problems: list[str]) -> tuple[BlankItem, ...]:
    if not isinstance(raw, list):
        problems.append("blanks: must be a list")
        return ()
    found: list[BlankItem] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"blanks[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with code, name and on_hand")
            continue
        code = item.get("code")
        if not isinstance(code, str) or not code.strip() or len(code.strip()) > 100:
            problems.append(f"{where}: code must be a non-empty string of at most 100 characters")
            continue
        code = code.strip()
        where = f"blank {code!r}"
        _unknown_fields(item, BLANK_FIELDS, where, problems)
        name = item.get("name", code)
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            problems.append(f"{where}: name must be a non-empty string of at most 255 characters")
        on_hand = item.get("on_hand", 0)
        if not _is_int(on_hand) or on_hand < 0:
            problems.append(f"{where}: on_hand must be a whole number >= 0, got {on_hand!r}")
        elif on_hand > MAX_COUNT:
            problems.append(f"{where}: on_hand {on_hand} is over {MAX_COUNT}")
        if code in seen:
            problems.append(f"{where}: listed twice")
        seen.add(code)
        if isinstance(name, str) and _is_int(on_hand):
            found.append(BlankItem(code=code, name=name.strip(), on_hand=on_hand))
    return tuple(found)


def _products(raw: Any, problems: list[str]) -> tuple[ProductItem, ...]:
    if not isinstance(raw, list):
        problems.append("products: must be a list")
        return ()
    found: list[ProductItem] = []
    for index, item in enumerate(raw):
        where = f"products[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with title and variants")
            continue
        title = item.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 500:
            problems.append(f"{where}: title must be a non-empty string of at most 500 characters")
            continue
        where = f"{where} {title!r}"
        _unknown_fields(item, PRODUCT_FIELDS, where, problems)
        description = item.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{where}: description must be a string")
            description = ""
        currency = item.get("currency", "USD")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            problems.append(f"{where}: currency must be a 3-letter code, got {currency!r}")
            currency = "USD"
        raw_variants = item.get("variants")
        if not isinstance(raw_variants, list) or not raw_variants:
            problems.append(f"{where}: variants must be a non-empty list")
            continue
        variants = [
            _variant(v, f"{where} variants[{i}]", problems) for i, v in enumerate(raw_variants)
        ]
        found.append(
            ProductItem(
                title=title.strip(),
                description=description,
                currency=currency.upper(),
                variants=tuple(v for v in variants if v is not None),
            )
        )
    return tuple(found)


def _variant(item: Any, where: str, problems: list[str]) -> VariantItem | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: must be an object with sku and price")
        return None
    sku = item.get("sku")
    if not isinstance(sku, str) or not sku.strip() or len(sku) > 255:
        problems.append(f"{where}: sku must be a non-empty string of at most 255 characters")
        return None
    where = f"variant {sku!r}"
    _unknown_fields(item, VARIANT_FIELDS, where, problems)
    price = _price(item.get("price"))
    if price is None:
        problems.append(f"{where}: price must be a number >= 0, got {item.get('price')!r}")
    cost = _cost(item.get("cost"))
    if item.get("cost") is not None and cost is None:
        problems.append(
            f"{where}: cost must be a number >= 0 with at most 6 decimal places, "
            f"got {item.get('cost')!r}"
        )
    options = item.get("options", {})
    if not isinstance(options, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in options.items()
    ):
        problems.append(f'{where}: options must map names to strings, e.g. {{"size": "M"}}')
        options = {}
    print_file_ref = item.get("print_file_ref")
    if print_file_ref is not None and (
        not isinstance(print_file_ref, str) or len(print_file_ref) > 500
    ):
        problems.append(f"{where}: print_file_ref must be a string of at most 500 characters")
        print_file_ref = None
    usage = _usage(item.get("blanks", []), where, problems)
    return VariantItem(  # a bad price is a problem already: the document is never returned
        sku=sku,
        price=price if price is not None else Decimal(0),
        options=options,
        print_file_ref=print_file_ref,
        blanks=usage,
        cost=cost,
    )


def _usage(raw: Any, where: str, problems: list[str]) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, list):
        problems.append(f"{where}: blanks must be a list of {{code, quantity}}")
        return ()
    found: list[tuple[str, int]] = []
    for index, use in enumerate(raw):
        if not isinstance(use, dict) or not isinstance(use.get("code"), str):
            problems.append(f"{where}: blanks[{index}] must be an object with a code")
            continue
        code = use["code"].strip()
        _unknown_fields(use, USAGE_FIELDS, f"{where} blank {code!r}", problems)
        quantity = use.get("quantity", 1)
        if not _is_int(quantity) or not 1 <= quantity <= MAX_COUNT:
            problems.append(
                f"{where}: blank {code!r} quantity must be a whole number >= 1 (at most "
                f"{MAX_COUNT}), got {quantity!r}"
            )
            continue
        if code in {known for known, _ in found}:
            problems.append(f"{where}: blank {code!r} is listed twice")
            continue
        found.append((code, quantity))
    return tuple(found)


def _no_duplicate_skus(products: Iterable[ProductItem], problems: list[str]) -> None:
    first: dict[str, str] = {}
    for product in products:
        for sku in product.skus:
            if sku in first:
                problems.append(
                    f"SKU {sku!r} appears twice in the file (products {first[sku]!r} and "
                    f"{product.title!r})"
                )
            else:
                first[sku] = product.title


def _unknown_fields(
    item: Mapping[str, Any], known: frozenset[str], where: str, out: list[str]
) -> None:
    extra = sorted(set(item) - known)
    if extra:
        out.append(
            f"{where}: unknown field(s) {', '.join(extra)}; expected {', '.join(sorted(known))}"
        )


def _nul_at(value: Any, path: str) -> str | None:
    """Where the first NUL character is (``products[0].variants[1].sku``), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path or "the catalog"
            found = _nul_at(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def _cost(value: Any) -> Decimal | None:
    """A cost as stored: >= 0, below 10**14, at most six decimal places; None if not one."""
    cost = _price(value) if value is not None else None
    if cost is None or cost >= COST_LIMIT or cost != cost.quantize(COST_UNIT):
        return None
    return cost


def _summary(problems: list[str]) -> str:
    shown = problems[:MAX_REPORTED_ERRORS]
    more = len(problems) - len(shown)
    tail = f"; and {more} more" if more else ""
    return "; ".join(shown) + tail + "; nothing was imported"


# --- The import ------------------------------------------------------------------------------


def import_catalog(
    uow: UnitOfWork,
    document: CatalogDocument,
    principal: Principal,
    blank_codes: BlankCodes,
    *,
    dry_run: bool = False,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Create the missing blanks and the new products; the caller commits (unless dry_run).

    A dry run writes nothing and returns the problems in ``errors``; a real run raises
    ``InvalidInput`` on the first sign of one, so the caller's transaction rolls back whole.
    """
    seller_id = document.seller_id
    if not principal.can_see(seller_id):
        raise Forbidden("a seller key can only import into its own seller's catalog")
    if uow.sellers.get(seller_id) is None:
        raise NotFound(f"seller {seller_id} does not exist")
    report = ImportReport(seller_id=seller_id, dry_run=dry_run)
    declared = {blank.code: blank for blank in document.blanks}
    used = {code for p in document.products for v in p.variants for code, _ in v.blanks}
    existing = blank_codes.ids_by_code(set(declared) | used)
    for product in document.products:
        for variant in product.variants:
            for code, _ in variant.blanks:
                if code not in declared and code not in existing:
                    report.errors.append(
                        f"product {product.title!r} variant {variant.sku!r}: unknown blank "
                        f'code {code!r}; declare it under "blanks" or use an existing code'
                    )
    new_blanks = [blank for blank in document.blanks if blank.code not in existing]
    if new_blanks and not principal.is_admin:
        raise Forbidden(
            f"blanks {', '.join(b.code for b in new_blanks)} do not exist; blanks are created "
            "with the admin key"
        )
    if report.errors:
        if dry_run:
            return report
        raise InvalidInput(_summary(report.errors))
    report.blanks_reused = sorted(code for code in declared if code in existing)
    blank_ids = dict(existing)
    for blank in new_blanks:
        report.blanks_created.append(blank.code)
        if not dry_run:
            created = stock.create_blank(
                uow, principal, code=blank.code, name=blank.name, on_hand=blank.on_hand
            )
            assert created.id is not None
            blank_ids[blank.code] = created.id
    have = uow.catalog.variants_by_sku(
        seller_id, [sku for p in document.products for sku in p.skus]
    )
    for product in document.products:
        taken = [sku for sku in product.skus if sku in have]
        if taken:
            report.products_skipped.append(
                {
                    "title": product.title,
                    "skus": product.skus,
                    "reason": _skip_reason(product, taken),
                }
            )
        elif dry_run:
            report.products_created.append(
                {"title": product.title, "id": None, "skus": product.skus}
            )
        else:
            created_product = catalog.create_product(
                uow, _spec(seller_id, product, blank_ids), principal
            )
            report.products_created.append(
                {"title": product.title, "id": created_product.id, "skus": product.skus}
            )
        if progress is not None:
            progress()
    return report


def _skip_reason(product: ProductItem, taken: list[str]) -> str:
    if len(taken) == len(product.skus):
        return "its SKUs exist already"
    return (
        f"SKUs {', '.join(taken)} exist already while "
        f"{', '.join(sku for sku in product.skus if sku not in taken)} do not; add those to the "
        "existing product (PUT /products/{id}) instead"
    )


def _spec(
    seller_id: int, product: ProductItem, blank_ids: Mapping[str, int]
) -> catalog.ProductSpec:
    return catalog.ProductSpec(
        seller_id=seller_id,
        title=product.title,
        description=product.description,
        currency=product.currency,
        variants=tuple(
            catalog.VariantSpec(
                sku=variant.sku,
                price=variant.price,
                options=dict(variant.options),
                print_file_ref=variant.print_file_ref,
                blanks=tuple(BlankUsage(blank_ids[code], qty) for code, qty in variant.blanks),
                cost=variant.cost,
            )
            for variant in product.variants
        ),
    )
