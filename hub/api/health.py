"""Liveness, readiness and the operator's counters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from hub.api.auth import admin_principal
from hub.bootstrap import Container
from hub.domain.sellers import Principal

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=True)
async def healthz() -> dict[str, str]:
    """The process answers. Unauthenticated, like /readyz."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when every configured dependency answers."""
    container: Container = request.app.state.container
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(container.check_database)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        ok = await run_in_threadpool(container.cache.ping)
        checks["cache"] = "ok" if ok else "failed"
    except Exception as exc:
        checks["cache"] = f"failed: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, _admin: Principal = Depends(admin_principal)) -> str:
    """Prometheus text: cache reads by kind and result."""
    container: Container = request.app.state.container
    lines = [
        "# HELP hub_cache_reads_total Cached document reads by kind and result.",
        "# TYPE hub_cache_reads_total counter",
    ]
    for name, count in sorted(container.reader.counters.items()):
        kind, _, result = name.rpartition("_")
        lines.append(f'hub_cache_reads_total{{kind="{kind}",result="{result}"}} {count}')
    return "\n".join(lines) + "\n"
