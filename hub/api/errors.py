"""Every error leaves the API as JSON: ``{"error": {"code": ..., "message": ...}}``, and the
OpenAPI document says so for every operation (``document_errors``).

A service being away (PostgreSQL, Redis, the broker: ``is_outage``) is not a bug of the request:
it is answered 503 ``unavailable`` with ``Retry-After``, logged once per outage rather than as a
traceback per request (``OutageGuard``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.auth import current_principal
from hub.api.ingress_guard import retry_after_header
from hub.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    MarketplaceUnavailable,
    NotFound,
    Unauthorized,
)
from hub.infrastructure.outages import is_outage
from hub.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS: float = Settings.model_fields["outage_retry_seconds"].default
OUTAGE_LOG_QUIET_SECONDS = 60.0

STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidTransition: 409,
    Forbidden: 403,
    InvalidInput: 422,
    Unauthorized: 401,
    MarketplaceUnavailable: 502,
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def unavailable_response(retry_seconds: float) -> JSONResponse:
    wait = retry_after_header(retry_seconds)
    return JSONResponse(
        error_body(
            "unavailable",
            f"A service the hub depends on is unavailable; retry after {wait} s.",
        ),
        status_code=503,
        headers={"Retry-After": wait},
    )


def _service_of(exc: BaseException) -> str:
    """Which dependency failed, for the log line only (clients are not told)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__.partition(".")[0]
        if module in ("sqlalchemy", "psycopg", "psycopg_pool", "sqlite3"):
            return "database"
        if module == "redis":
            return "cache"
        if module in ("dramatiq", "pika"):
            return "broker"
        current = current.__cause__ or current.__context__
    return "unknown"


class OutageGuard:
    """Turn a request that failed because a service is away into 503 + ``Retry-After``.

    Pure ASGI around the routes (inside the server-error middleware, which would log a
    traceback for every failing request and answer a bare 500): whatever wraps the outage
    error, ``is_outage`` walks its chain. Anything else, or an outage after the response has
    started, is re-raised untouched.

    One warning per outage and service: a request cannot tell whether the next success touched
    the failed service (a key or a document may come from memory or the cache), so an outage
    counts as a new one only after ``OUTAGE_LOG_QUIET_SECONDS`` without a 503 for it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._last: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started or not is_outage(exc):
                raise
            self._log(exc)
            await unavailable_response(_retry_seconds(scope))(scope, receive, send)

    def _log(self, exc: BaseException) -> None:
        service, now = _service_of(exc), time.monotonic()
        last, self._last[service] = self._last.get(service), now
        if last is None or now - last > OUTAGE_LOG_QUIET_SECONDS:
            log.warning(
                "service outage: answering 503 with Retry-After until it is back",
                extra={"service": service, "error_type": type(exc).__name__},
            )


def _retry_seconds(scope: Scope) -> float:
    app = scope.get("app")
    container = getattr(getattr(app, "state", None), "container", None)
    if container is None:
        return DEFAULT_RETRY_SECONDS
    return float(container.settings.outage_retry_seconds)


async def _unauthenticated_unreadable_body(
    request: Request, exc: RequestValidationError
) -> HTTPException | None:
    """The 401 owed to a request whose body is not JSON at all, when its route needs a key.

    FastAPI decodes the body before it runs any dependency, so without this a caller with no
    key would learn about our parser (422) before being told to authenticate; a body that is
    JSON but the wrong shape already meets the key check first."""
    if not any(error.get("type") == "json_invalid" for error in exc.errors()):
        return None
    if not _needs_api_key(request.scope.get("route")):
        return None
    authenticator = request.app.state.authenticator
    try:
        await authenticator.principal(request.headers.get("authorization"))
    except HTTPException as denied:
        return denied
    return None


def _needs_api_key(route: object) -> bool:
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        if dependant.call is current_principal:
            return True
        pending.extend(dependant.dependencies)
    return False


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(OutageGuard)

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        denied = await _unauthenticated_unreadable_body(request, exc)
        if denied is not None:
            return await http_error(request, denied)
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            error_body("validation_error", summary, fields=problems), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }
        return JSONResponse(
            error_body(code.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


class FieldProblem(BaseModel):
    field: str = Field(description="Where: ``body.variants.0.sku``, ``query.limit``, ...")
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: ``not_found``, ``validation_error``...")
    message: str = Field(description="For people.")
    fields: list[FieldProblem] | None = Field(
        None, description="Validation errors (422) only: every field that was refused."
    )


class ErrorOut(BaseModel):
    """The body of every error answer; some errors add details beside ``code`` and
    ``message``."""

    error: ErrorDetail


ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head", "options", "trace"}
WHY: dict[str, str] = {
    "400": "The body could not be read as JSON text (it is not UTF-8).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key may not do this (an admin-only operation, another seller's seller_id).",
    "404": "No such resource, or it belongs to another seller.",
    "409": "Refused in the resource's current state.",
    "413": "The request body is over the configured limit.",
    "422": "A parameter or the body was refused; ``fields`` names each problem.",
    "429": "Too many failed attempts from this source; retry after ``Retry-After`` seconds.",
    "502": "The marketplace could not be reached or answered with an error.",
    "503": "A service the hub depends on (database, cache, broker) is away; retry after "
    "``Retry-After`` seconds.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Operations that touch no dependency cannot meet an outage (liveness, readiness's own 503).
NO_OUTAGE_TAGS = frozenset({"health"})
# Operations that take no API key prove the caller otherwise; how they refuse, by tag.
TAG_ERRORS: dict[str, tuple[str, ...]] = {
    "webhooks": ("401", "404", "413", "422", "429"),  # signature; unknown marketplace; budget
}


def _errors_of(method: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses any operation of this kind can answer, besides its own."""
    found: set[str] = set()
    if operation.get("security"):
        found |= {"401", "403", "404"}
        if method in WRITES:
            found.add("409")
    if method in WRITES:
        found.add("413")  # the body limit covers every method that may carry a body
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        found.add("400")
    if (
        operation.get("parameters")
        or operation.get("requestBody")
        or "422" in operation.get("responses", {})
    ):
        found.add("422")
    if any(param.get("in") == "path" for param in operation.get("parameters", [])):
        found.add("404")
    for tag in operation.get("tags", []):
        found |= set(TAG_ERRORS.get(tag, ()))
    if not NO_OUTAGE_TAGS.intersection(operation.get("tags", [])):
        found.add("503")
    return found


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to every operation of an OpenAPI document: FastAPI documents only
    its own validation error, in a shape our handler never sends."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if schemas.pop("HTTPValidationError", None) is not None:  # and the item it lists
        schemas.pop("ValidationError", None)
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorOut"] = error_schema
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_errors_of(method, operation)):
                current = responses.get(status)
                if current is None or _fastapi_validation_error(current):
                    responses[status] = {
                        "description": WHY[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
                    if status == "503":
                        responses[status]["headers"] = RETRY_AFTER_HEADER
                elif "content" not in current:
                    current["content"] = {"application/json": {"schema": ERROR_REF}}
    return document


def _fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def install_openapi(app: FastAPI) -> None:
    """Serve the OpenAPI document with the error answers documented (built once, on demand)."""
    build = app.openapi  # FastAPI's own; it caches the document in ``app.openapi_schema``

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build())
        return app.openapi_schema

    generate: Callable[[], dict[str, Any]] = openapi
    app.openapi = generate  # type: ignore[method-assign]
