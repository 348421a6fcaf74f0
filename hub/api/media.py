"""Stored images for marketplaces: ``GET /media/{key}?expires=..&signature=..``.

No API key: the signature (``imaging.signed_urls``) is the authentication, so a marketplace can
fetch the URL we pushed, in every storage mode. The object is streamed from the store in chunks.
The app's lifespan sets ``app.state.object_store`` and ``app.state.media_url_secret`` (bytes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException

from hub.api.errors import ErrorOut
from imaging.signed_urls import verify
from imaging.storage import InvalidObjectKey, ObjectMissing, ObjectStore, StoredObject

router = APIRouter(tags=["media"])

REFUSED = "media URL signature is missing, wrong or expired; push the image again for a fresh URL"


def _check_signature(request: Request, key: str, expires: str | None, signature: str | None) -> int:
    """The seconds the URL stays valid; 403 unless the signature covers ``key`` and the expiry."""
    secret: bytes = request.app.state.media_url_secret
    now = time.time()
    if expires is None or signature is None:
        raise HTTPException(403, REFUSED)
    if not verify(key, expires, signature, secret=secret, now=now):
        raise HTTPException(403, REFUSED)
    return max(0, int(expires) - int(now))


def _headers(stored: StoredObject, remaining_seconds: int) -> dict[str, str]:
    return {
        "Content-Length": str(stored.size),
        # Keys are content-addressed: the bytes never change, only the URL's validity runs out.
        "Cache-Control": f"public, max-age={remaining_seconds}, immutable",
        # Served from the API's origin: never let a browser sniff or run what was uploaded.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


async def _stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Read chunks in worker threads; close the store's reader even if the client goes away."""
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def _not_found(key: str) -> HTTPException:
    return HTTPException(404, f"no stored image under {key!r}")


@router.get(
    "/media/{key:path}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The stored image, as it was stored (its type in Content-Type).",
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        403: {"model": ErrorOut, "description": "The signature is missing, wrong or expired."},
        404: {"model": ErrorOut, "description": "Nothing is stored under this key."},
    },
)
async def get_media(
    request: Request, key: str, expires: str | None = None, signature: str | None = None
) -> Response:
    """The stored object, streamed; 403 on a bad or expired signature, 404 when it is gone."""
    remaining = _check_signature(request, key, expires, signature)
    store: ObjectStore = request.app.state.object_store
    try:
        stored, chunks = await run_in_threadpool(store.open, key)
    except (ObjectMissing, InvalidObjectKey):
        raise _not_found(key) from None
    return StreamingResponse(
        _stream(chunks), media_type=stored.content_type, headers=_headers(stored, remaining)
    )


@router.head("/media/{key:path}", include_in_schema=False)
async def head_media(
    request: Request, key: str, expires: str | None = None, signature: str | None = None
) -> Response:
    """The GET's headers without the body (some fetchers check the size and type first)."""
    remaining = _check_signature(request, key, expires, signature)
    store: ObjectStore = request.app.state.object_store
    try:
        stored = await run_in_threadpool(store.head, key)
    except InvalidObjectKey:
        stored = None
    if stored is None:
        raise _not_found(key)
    return Response(media_type=stored.content_type, headers=_headers(stored, remaining))
