"""Queueing an upload's renders: one operation per (content, spec table), so the same bytes
uploaded again, or for another product, are rendered once, and a changed spec renders anew."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection

from hub.infrastructure.images import ProductImage
from hub.infrastructure.outbound import IMAGES_QUEUE, IMAGES_RENDER_ACTOR, request_operation
from imaging.specs import RenditionSpec
from sync.domain.policies import IMAGES_RENDER


def specs_fingerprint(specs: dict[str, RenditionSpec]) -> str:
    joined = ",".join(f"{name}={spec.fingerprint()}" for name, spec in sorted(specs.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def request_render(
    db: Connection, image: ProductImage, specs: dict[str, RenditionSpec]
) -> int | None:
    """The render operation with its message; ``None`` when these bytes are rendered (or
    queued) for this spec table already."""
    return request_operation(
        db,
        kind=IMAGES_RENDER,
        shop_id=None,
        key=f"images.render:{image.source_sha256}:{specs_fingerprint(specs)}",
        payload={"source_sha256": image.source_sha256, "source_key": image.source_key},
        actor=IMAGES_RENDER_ACTOR,
        queue=IMAGES_QUEUE,
    )
