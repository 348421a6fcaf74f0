"""Every error leaves the API as JSON: ``{"error": {"code": ..., "message": ...}}``, and the
OpenAPI document says so for every operation (``document_errors``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
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
}
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
