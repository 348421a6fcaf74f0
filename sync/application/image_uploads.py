"""Accepting an image: checked from its header, stored once per content hash, recorded for the
product and queued for rendering, for the API and the CLI alike."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

import imaging.render as renderer
from hub.application.catalog import load_product
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.sellers import Principal
from hub.infrastructure import images as image_rows
from imaging.specs import load_specs
from imaging.storage import ObjectStore, source_key
from sync.application.image_requests import request_render

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "TIFF": "tif", "MPO": "jpg"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "tif": "image/tiff",
}


@dataclass(frozen=True)
class Upload:
    """A received file, already spooled: its bytes, their sha256 and size."""

    file: BinaryIO
    sha256: str
    size: int


def spool(stream: BinaryIO, *, chunk_size: int = 1024 * 1024) -> Upload:
    """Hash and count a file object read in chunks (the CLI's path; the API spools itself)."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return Upload(stream, digest.hexdigest(), size)


def check_target(
    container: Container, product_id: int, variant_id: int | None, principal: Principal
) -> None:
    with container.uow() as uow:
        product = load_product(uow, product_id, principal)
    if variant_id is not None and variant_id not in {v.id for v in product.variants}:
        raise NotFound(f"product {product_id} has no variant {variant_id}")


def accept_image(
    container: Container,
    store: ObjectStore,
    upload: Upload,
    *,
    product_id: int,
    variant_id: int | None,
    role: str,
    rank: int,
    principal: Principal,
) -> image_rows.ProductImage:
    if role not in image_rows.ROLES:
        raise InvalidInput(f"role must be one of {', '.join(image_rows.ROLES)}, not {role!r}")
    if rank < 0:
        raise InvalidInput("rank cannot be negative")
    if upload.size == 0:
        raise InvalidInput("the upload is empty: send the image file's bytes as the body")
    check_target(container, product_id, variant_id, principal)
    settings = container.settings
    try:
        info = renderer.inspect(upload.file)
    except renderer.ImageRejected as rejected:
        raise InvalidInput(f"image rejected ({rejected.reason}): {rejected.message}") from rejected
    extension = EXTENSIONS.get(info.format)
    if extension is None:
        raise InvalidInput(f"image rejected: {info.format} is not PNG, JPEG, WebP or TIFF")
    upload.file.seek(0)
    key = source_key(upload.sha256, extension)
    store.put_if_absent(key, upload.file, content_type=CONTENT_TYPES[extension])
    with container.engine.begin() as db:
        image = image_rows.add_image(
            db,
            product_id=product_id,
            variant_id=variant_id,
            role=role,
            rank=rank,
            source_sha256=upload.sha256,
            source_key=key,
            content_type=CONTENT_TYPES[extension],
            size_bytes=upload.size,
            width=info.width,
            height=info.height,
        )
        request_render(db, image, load_specs(settings.image_specs))
    return image
