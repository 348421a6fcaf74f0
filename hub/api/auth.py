"""Bearer API keys: the operator's from settings, sellers' from the database.

Checked keys are remembered in-process for ``HUB_API_KEY_CACHE_SECONDS`` (by hash, never the key
itself) so the hot read paths spend no database round trip on authentication.
"""

from __future__ import annotations

import hmac
import time

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from hub.application.sellers import hash_api_key, principal_for_key
from hub.bootstrap import Container
from hub.domain.errors import Forbidden
from hub.domain.sellers import Principal

ADMIN = Principal(seller_id=None, is_admin=True)
CHALLENGE = {"WWW-Authenticate": "Bearer"}
MAX_REMEMBERED_KEYS = 10_000


class Authenticator:
    def __init__(self, container: Container) -> None:
        self._container = container
        admin = container.settings.admin_api_key
        self._admin_hash = hash_api_key(admin.get_secret_value()) if admin else None
        self._ttl = container.settings.api_key_cache_seconds
        self._known: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "send 'Authorization: Bearer <api key>'", headers=CHALLENGE)
        key_hash = hash_api_key(authorization[len("Bearer ") :].strip())
        if self._admin_hash is not None and hmac.compare_digest(key_hash, self._admin_hash):
            return ADMIN
        now = time.monotonic()
        remembered = self._known.get(key_hash)
        if remembered is not None and remembered[0] > now:
            found = remembered[1]
        else:
            found = await run_in_threadpool(self._lookup, key_hash)
            if len(self._known) >= MAX_REMEMBERED_KEYS:
                self._known.clear()
            self._known[key_hash] = (now + self._ttl, found)
        if found is None:
            raise HTTPException(401, "unknown or revoked API key", headers=CHALLENGE)
        return found

    def _lookup(self, key_hash: str) -> Principal | None:
        with self._container.uow() as uow:
            return principal_for_key(uow, key_hash, hashed=True)


# Documents the key in the OpenAPI (a security scheme on every operation that needs one);
# the header itself is read and checked by the Authenticator.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="The operator's HUB_ADMIN_API_KEY or a seller's key: `Bearer <key>`.",
)


async def current_principal(
    request: Request,
    _documented: HTTPAuthorizationCredentials | None = Security(BEARER),
) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.principal(request.headers.get("authorization"))


async def admin_principal(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this endpoint needs the admin API key")
    return principal


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container
