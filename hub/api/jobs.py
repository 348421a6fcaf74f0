"""Sync jobs (operations) for operators and sellers: what is queued, what failed and why, a
retry with a fresh budget, and the SKU auto-binding scan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from hub.api.auth import current_principal
from hub.api.params import NUL_FREE, PathId, QueryId, parse_cursor
from hub.application.shops import load_shop
from hub.bootstrap import Container
from hub.domain.errors import Conflict, NotFound
from hub.domain.sellers import Principal
from sync.infrastructure import operations as ops

router = APIRouter(tags=["jobs"])
STATUSES = "^(queued|running|succeeded|superseded|failed)$"


class JobOut(BaseModel):
    id: int
    kind: str
    shop_id: int | None
    key: str
    status: str
    attempts: int
    not_before: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


def _allowed_shops(container: Container, principal: Principal) -> set[int] | None:
    if principal.is_admin:
        return None
    with container.uow() as uow:
        return {shop.id for shop in uow.shops.list(principal.seller_id) if shop.id is not None}


def visible_job(container: Container, principal: Principal, job_id: int) -> ops.Operation:
    allowed = _allowed_shops(container, principal)
    with container.engine.connect() as db:
        operation = ops.get(db, job_id)
    if operation is None or (allowed is not None and operation.shop_id not in allowed):
        raise NotFound(f"job {job_id} does not exist")
    return operation


@router.get("/jobs")
async def list_jobs(
    request: Request,
    shop_id: QueryId = None,
    status_: str | None = Query(None, alias="status", pattern=STATUSES),
    kind: str | None = Query(None, max_length=32, pattern=NUL_FREE),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    principal: Principal = Depends(current_principal),
) -> JobPage:
    container: Container = request.app.state.container
    before_id = parse_cursor(cursor)

    def query() -> list[ops.Operation]:
        allowed = _allowed_shops(container, principal)
        if allowed is not None and shop_id is not None and shop_id not in allowed:
            return []
        with container.engine.connect() as db:
            found = ops.list_operations(
                db,
                shop_id=shop_id,
                status=status_,
                kind=kind,
                before_id=before_id,
                limit=(limit + 1) if allowed is None else 10 * (limit + 1),
            )
        if allowed is not None:
            found = [operation for operation in found if operation.shop_id in allowed]
        return found[: limit + 1]

    found = await run_in_threadpool(query)
    more = len(found) > limit
    found = found[:limit]
    return JobPage(
        items=[JobOut.model_validate(operation.as_dict()) for operation in found],
        next_cursor=str(found[-1].id) if more and found else None,
    )


@router.get("/jobs/{job_id}")
def get_job(
    job_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> JobOut:
    operation = visible_job(request.app.state.container, principal, job_id)
    return JobOut.model_validate(operation.as_dict())


@router.post("/jobs/{job_id}/retry")
def retry_job(
    job_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> JobOut:
    """Run a failed job again with a fresh budget (its payload, and so its key, unchanged)."""
    container: Container = request.app.state.container
    operation = visible_job(container, principal, job_id)
    with container.engine.begin() as db:
        if not ops.retry(db, operation):
            raise Conflict(f"job {job_id} is {operation.status}; only failed jobs are retried")
    return JobOut.model_validate(visible_job(container, principal, job_id).as_dict())


@router.post("/shops/{shop_id}/bindings/auto", status_code=status.HTTP_202_ACCEPTED)
def auto_bind(
    shop_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> JobOut:
    """Scan the shop's listings and bind them to our variants by SKU, as a job: its result
    reports what was bound, the conflicts and the SKUs we do not know."""
    container: Container = request.app.state.container
    with container.uow() as uow:
        load_shop(uow, shop_id, principal)
    with container.engine.begin() as db:
        operation_id = ops.request_catalog_pull(db, shop_id, "api")
    return JobOut.model_validate(visible_job(container, principal, operation_id).as_dict())
