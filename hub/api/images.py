"""Product images: upload (streamed to a spool with a byte counter, never held in memory
whole) and list. Rendering and pushes run in the background."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from hub.api.auth import current_principal
from hub.api.params import MAX_COUNT, PathId, QueryId
from hub.application.catalog import load_product
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput
from hub.domain.sellers import Principal
from hub.infrastructure import images as image_rows
from sync.application.image_uploads import Upload, accept_image, check_target

router = APIRouter(tags=["images"])
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024  # larger uploads spill to a temporary file


class ImageOut(BaseModel):
    id: int
    product_id: int
    variant_id: int | None
    role: str
    rank: int
    source_sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    status: str
    reason: str | None
    created_at: datetime


def _out(image: image_rows.ProductImage) -> ImageOut:
    return ImageOut.model_validate(image, from_attributes=True)


IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/products/{product_id}/images",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The image file itself, up to HUB_MAX_UPLOAD_BYTES.",
            "content": dict.fromkeys(
                ("image/png", "image/jpeg", "image/webp", "image/tiff"), IMAGE_BODY
            ),
        }
    },
)
async def upload_image(
    product_id: PathId,
    request: Request,
    role: str = Query("mockup", pattern="^(mockup|print)$"),
    rank: int = Query(0, ge=0, le=MAX_COUNT),
    variant_id: QueryId = None,
    principal: Principal = Depends(current_principal),
) -> ImageOut:
    """The body is the image file itself (PNG, JPEG, WebP or TIFF), up to HUB_MAX_UPLOAD_BYTES.
    Only mockups are pushed to marketplaces, in rank order; print files never are."""
    container: Container = request.app.state.container
    await run_in_threadpool(check_target, container, product_id, variant_id, principal)
    limit = container.settings.max_upload_bytes
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    try:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidInput(f"the upload exceeds {limit} bytes")
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        image = await run_in_threadpool(
            accept_image,
            container,
            request.app.state.object_store,
            Upload(spool, digest.hexdigest(), size),  # type: ignore[arg-type]
            product_id=product_id,
            variant_id=variant_id,
            role=role,
            rank=rank,
            principal=principal,
        )
    finally:
        spool.close()
    return _out(image)


@router.get("/products/{product_id}/images")
def list_product_images(
    product_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> list[ImageOut]:
    container: Container = request.app.state.container
    with container.uow() as uow:
        load_product(uow, product_id, principal)
    with container.engine.connect() as db:
        return [_out(image) for image in image_rows.list_images(db, product_id)]
