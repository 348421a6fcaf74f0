"""Serving cached documents: the stored bytes go out as they are, tagged hit or miss."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from hub.bootstrap import Container
from hub.domain.errors import NotFound
from hub.domain.sellers import Principal
from hub.infrastructure.read_models import Document

OWNER_SEPARATOR = b"\n"


async def serve_document(
    container: Container,
    principal: Principal,
    *,
    kind: str,
    key: str,
    load: Callable[[], Document | None],
    missing: str,
) -> Response:
    """Cache-aside read of one document; the owner travels in the entry, checked on every hit."""

    async def loader() -> tuple[int, bytes] | None:
        document = await run_in_threadpool(load)
        if document is None:
            return None
        return document.version, b"%d" % document.owner_id + OWNER_SEPARATOR + document.body

    result = await container.reader.read(kind, key, loader)
    if result.payload is None:
        raise NotFound(missing)
    owner, _, body = result.payload.partition(OWNER_SEPARATOR)
    if not principal.can_see(int(owner)):
        raise NotFound(missing)
    return Response(
        body,
        media_type="application/json",
        headers={"X-Cache": "hit" if result.hit else "miss"},
    )
