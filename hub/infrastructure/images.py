"""Product images and their renditions on SQL. Sources and renditions are content-addressed:
the same bytes uploaded twice, or for two products, are stored and rendered once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import ImageRenditionRow, ProductImageRow, table_of

IMAGES = table_of(ProductImageRow)
RENDITIONS = table_of(ImageRenditionRow)
MOCKUP, PRINT = "mockup", "print"
ROLES = (MOCKUP, PRINT)
UPLOADED, RENDERED, REJECTED = "uploaded", "rendered", "rejected"


@dataclass(frozen=True)
class ProductImage:
    id: int
    product_id: int
    variant_id: int | None
    role: str
    rank: int
    source_sha256: str
    source_key: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    status: str
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class StoredRendition:
    source_sha256: str
    rendition: str
    fingerprint: str
    key: str
    content_type: str
    size_bytes: int
    width: int
    height: int


def _insert(db: Connection):  # type: ignore[no-untyped-def]
    return pg_insert if db.dialect.name == "postgresql" else sqlite_insert


def add_image(
    db: Connection,
    *,
    product_id: int,
    variant_id: int | None,
    role: str,
    rank: int,
    source_sha256: str,
    source_key: str,
    content_type: str,
    size_bytes: int,
    width: int,
    height: int,
) -> ProductImage:
    """Insert, or for bytes this product has already, take the new role, rank and variant."""
    statement = _insert(db)(IMAGES).values(
        product_id=product_id,
        variant_id=variant_id,
        role=role,
        rank=rank,
        source_sha256=source_sha256,
        source_key=source_key,
        content_type=content_type,
        size_bytes=size_bytes,
        width=width,
        height=height,
        status=UPLOADED,
        created_at=utcnow(),
    )
    statement = statement.on_conflict_do_update(
        index_elements=["product_id", "source_sha256"],
        set_={"role": role, "rank": rank, "variant_id": variant_id},
    ).returning(*IMAGES.c)
    return ProductImage(*db.execute(statement).one())


def get_image(db: Connection, image_id: int) -> ProductImage | None:
    row = db.execute(select(IMAGES).where(IMAGES.c.id == image_id)).first()
    return ProductImage(*row) if row is not None else None


def list_images(db: Connection, product_id: int) -> list[ProductImage]:
    rows = db.execute(
        select(IMAGES)
        .where(IMAGES.c.product_id == product_id)
        .order_by(IMAGES.c.role, IMAGES.c.rank, IMAGES.c.id)
    )
    return [ProductImage(*row) for row in rows]


def images_of_source(db: Connection, source_sha256: str) -> list[ProductImage]:
    rows = db.execute(select(IMAGES).where(IMAGES.c.source_sha256 == source_sha256))
    return [ProductImage(*row) for row in rows]


def set_status(db: Connection, source_sha256: str, status: str, reason: str | None = None) -> None:
    db.execute(
        update(IMAGES)
        .where(IMAGES.c.source_sha256 == source_sha256)
        .values(status=status, reason=reason)
    )


def add_rendition(db: Connection, rendition: StoredRendition) -> None:
    db.execute(
        _insert(db)(RENDITIONS)
        .values(
            source_sha256=rendition.source_sha256,
            rendition=rendition.rendition,
            fingerprint=rendition.fingerprint,
            key=rendition.key,
            content_type=rendition.content_type,
            size_bytes=rendition.size_bytes,
            width=rendition.width,
            height=rendition.height,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["source_sha256", "rendition", "fingerprint"])
    )


def rendition_keys(
    db: Connection, sources: Iterable[str], rendition: str, fingerprint: str
) -> dict[str, str]:
    """Source sha256 -> the stored key of its ``rendition`` at ``fingerprint``."""
    wanted = sorted(set(sources))
    if not wanted:
        return {}
    rows = db.execute(
        select(RENDITIONS.c.source_sha256, RENDITIONS.c.key).where(
            RENDITIONS.c.source_sha256.in_(wanted),
            RENDITIONS.c.rendition == rendition,
            RENDITIONS.c.fingerprint == fingerprint,
        )
    )
    return {row.source_sha256: row.key for row in rows}


def mockups(db: Connection, product_ids: Iterable[int]) -> dict[int, list[ProductImage]]:
    """Each product's mockups in push order (rank, then upload order); print files never."""
    wanted = sorted(set(product_ids))
    found: dict[int, list[ProductImage]] = defaultdict(list)
    if not wanted:
        return found
    rows = db.execute(
        select(IMAGES)
        .where(IMAGES.c.product_id.in_(wanted), IMAGES.c.role == MOCKUP)
        .order_by(IMAGES.c.product_id, IMAGES.c.rank, IMAGES.c.id)
    )
    for row in rows:
        image = ProductImage(*row)
        found[image.product_id].append(image)
    return found
