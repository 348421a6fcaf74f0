"""Rendition specs: one row per marketplace, the only place their image rules live.

Sources for the defaults (see ``/work/shared/reference/marketplaces.md`` §0, §1.4, §2.4, §3.4):

* Shopify: a ``MediaImage`` may be up to 4472x4472 px or 20 MP; 2048x2048 px is recommended
  (https://help.shopify.com/en/manual/online-store/images/theme-images and
  https://shopify.dev/docs/apps/build/online-store/product-media). We render 2048 px on the
  long side: even a square comes to 2048² = 4.2 MP, inside both limits. Its 20 MB file-size
  limit is unconfirmed; a 2048 px JPEG is far below it, so we set no byte cap.
* Etsy: 2000 px recommended, and JPEG/PNG/GIF up to 10 MB. Both are **unconfirmed** (third
  party only, https://hauld.app/blog/etsy-listing-photo-checklist, quoted by the reference);
  Etsy's own API guide for ``uploadListingImage`` states no cap. We use 10 MB as the cap and
  keep it configurable (``load_specs``), so a confirmed figure is a settings change.
* WooCommerce: 1200 px; size limits are those of each WordPress host, so no byte cap.

``load_specs`` merges a JSON override over these defaults; every spec validates itself, so a
bad table fails at start-up with a message naming the rendition and the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

# Bump when the render pipeline changes its output for the same spec (resampling, colour
# handling, encoder options): it is part of every fingerprint, so new pixels get new keys.
PIPELINE_VERSION = 1

SUPPORTED_FORMATS = {"JPEG": ("jpg", "image/jpeg")}
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")

# Shopify's hard limits for a MediaImage (product-media guide, reference §1.4). A long side
# of at most 4472 px keeps any aspect ratio inside both 4472x4472 and 20 MP (4472² < 20e6).
SHOPIFY_MAX_SIDE = 4472
SHOPIFY_MAX_PIXELS = 20_000_000

ETSY_MAX_BYTES = 10 * 1024 * 1024


def _check_int(
    where: str, field: str, value: object, *, minimum: int, maximum: int | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {field} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ValueError(f"{where}: {field} must be at least {minimum}{upper}, got {value}")


@dataclass(frozen=True)
class RenditionSpec:
    """What one marketplace gets: a JPEG at most ``long_side`` px on its long side.

    ``quality`` is where the byte-cap search starts (the highest quality tried) and
    ``min_quality`` where it gives up: a rendition that does not fit ``max_bytes`` even at
    ``min_quality`` is refused, never silently made smaller than its spec.
    """

    name: str
    long_side: int
    max_bytes: int | None
    format: str = "JPEG"
    quality: int = 90
    min_quality: int = 60
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        where = f"rendition spec {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{where}: name must be a non-empty string")
        _check_int(where, "long_side", self.long_side, minimum=1)
        if self.max_bytes is not None:
            _check_int(where, "max_bytes", self.max_bytes, minimum=1)
        if self.format not in SUPPORTED_FORMATS:
            raise ValueError(
                f"{where}: format {self.format!r} is not supported; use one of "
                f"{sorted(SUPPORTED_FORMATS)}"
            )
        # Pillow's documentation advises against JPEG quality above 95 (bigger files, no gain).
        _check_int(where, "quality", self.quality, minimum=1, maximum=95)
        _check_int(where, "min_quality", self.min_quality, minimum=1, maximum=self.quality)
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(
                f"{where}: subsampling {self.subsampling!r} is not one of {list(SUBSAMPLINGS)}"
            )
        if self.name == "shopify" and self.long_side > SHOPIFY_MAX_SIDE:
            raise ValueError(
                f"{where}: long_side {self.long_side} exceeds Shopify's {SHOPIFY_MAX_SIDE} px "
                f"({SHOPIFY_MAX_PIXELS:,} px) limit"
            )

    def fingerprint(self) -> str:
        """Short, stable hex of every field (and the pipeline version): new spec, new keys."""
        payload = {**asdict(self), "pipeline": PIPELINE_VERSION}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def extension(self) -> str:
        return SUPPORTED_FORMATS[self.format][0]

    @property
    def content_type(self) -> str:
        return SUPPORTED_FORMATS[self.format][1]


DEFAULT_SPECS: dict[str, RenditionSpec] = {
    "shopify": RenditionSpec(name="shopify", long_side=2048, max_bytes=None),
    "etsy": RenditionSpec(name="etsy", long_side=2000, max_bytes=ETSY_MAX_BYTES),
    "woocommerce": RenditionSpec(name="woocommerce", long_side=1200, max_bytes=None),
}

_FIELD_NAMES = {f.name for f in fields(RenditionSpec)}


def load_specs(override_json: str | None) -> dict[str, RenditionSpec]:
    """The configured table: ``{name: {field: value}}`` merged over ``DEFAULT_SPECS``.

    A known name takes only the fields given; a new name needs at least ``long_side``
    (``max_bytes`` defaults to no cap); ``{name: null}`` drops a rendition. Anything else
    (bad JSON, unknown field, wrong type, out-of-range value) raises ``ValueError``.
    """
    table = dict(DEFAULT_SPECS)
    if override_json is None or not override_json.strip():
        return table
    try:
        override = json.loads(override_json)
    except json.JSONDecodeError as error:
        raise ValueError(f"rendition specs: not valid JSON ({error})") from None
    if not isinstance(override, dict):
        raise ValueError(
            "rendition specs: expected a JSON object of {name: {field: value}}, "
            f"got {type(override).__name__}"
        )
    for name, changes in override.items():
        if changes is None:
            table.pop(name, None)
            continue
        if not isinstance(changes, dict):
            raise ValueError(
                f"rendition spec {name!r}: expected an object of fields, "
                f"got {type(changes).__name__}"
            )
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ValueError(
                f"rendition spec {name!r}: unknown field(s) {unknown}; "
                f"known fields are {sorted(_FIELD_NAMES)}"
            )
        if changes.get("name", name) != name:
            raise ValueError(
                f"rendition spec {name!r}: field name {changes['name']!r} differs from its key"
            )
        base: dict[str, Any]
        if name in table:
            base = asdict(table[name])
        elif "long_side" in changes:
            base = {"name": name, "max_bytes": None}
        else:
            raise ValueError(f"rendition spec {name!r}: a new rendition needs long_side")
        base.update(changes)
        base["name"] = name
        table[name] = RenditionSpec(**base)
    return table
