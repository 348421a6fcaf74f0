"""Liveness and readiness (the operator's counters are in `hub.api.metrics`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.bootstrap import Container
from hub.settings import Settings

router = APIRouter(tags=["health"])

# A probe answers within ``readiness_timeout_seconds`` whatever a dependency does (a black-holed
# server would otherwise hold the request and a threadpool thread for as long as the client's
# own timeouts allow), and each dependency is probed at most once per CHECK_CACHE_SECONDS, with
# one probe in flight, so a load balancer polling /readyz costs next to nothing.
CHECK_CACHE_SECONDS = 1.0
# The setting's default, for callers without a container at hand (tests bound their waits).
CHECK_TIMEOUT_SECONDS: float = Settings.model_fields["readiness_timeout_seconds"].default


class ReadinessOut(BaseModel):
    """What /readyz found; the same body whether ready (200) or not (503)."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description="Each configured dependency (``database``, ``cache``, and ``broker`` when "
        "one is configured): ``ok``, or ``failed: <reason>`` (``failed: timeout`` when it did "
        "not answer within ``HUB_READINESS_TIMEOUT_SECONDS``)."
    )


@dataclass
class _Check:
    probe: Callable[[], None]
    answer: str = "unknown"
    at: float = float("-inf")
    running: asyncio.Task[str] | None = field(default=None, repr=False)


class Readiness:
    """Each configured dependency's last answer, reused for ``CHECK_CACHE_SECONDS``."""

    def __init__(self, container: Container) -> None:
        self._timeout = container.settings.readiness_timeout_seconds
        self._checks = {
            "database": _Check(container.check_database),
            "cache": _Check(lambda: _ping_cache(container)),
        }
        if container.settings.broker_url:
            url, timeout = container.settings.broker_url, self._timeout
            self._checks["broker"] = _Check(lambda: check_broker(url, timeout))

    async def answers(self) -> dict[str, str]:
        names = list(self._checks)
        found = await asyncio.gather(*(self._answer(self._checks[name]) for name in names))
        return dict(zip(names, found, strict=True))

    async def _answer(self, check: _Check) -> str:
        if time.monotonic() - check.at < CHECK_CACHE_SECONDS:
            return check.answer
        running = check.running
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            check.running = running = asyncio.create_task(_probe(check.probe))
        try:
            # shield: a probe that outlives this request still finishes and counts for the next
            answer = await asyncio.wait_for(asyncio.shield(running), self._timeout)
        except TimeoutError:
            answer = "failed: timeout"
        check.answer, check.at = answer, time.monotonic()
        return answer


async def _probe(probe: Callable[[], None]) -> str:
    try:
        await run_in_threadpool(probe)
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"


def _ping_cache(container: Container) -> None:
    if not container.cache.ping():
        raise ConnectionError("the cache did not answer PING")


def check_broker(url: str, timeout: float) -> None:
    """Open and close one AMQP connection (handshake, credentials, vhost) within ``timeout``."""
    import pika  # type: ignore[import-untyped]

    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    connection = pika.BlockingConnection(parameters)
    connection.close()


@router.get("/healthz", include_in_schema=True)
async def healthz() -> dict[str, str]:
    """The process answers. Unauthenticated, like /readyz."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={
        503: {
            "model": ReadinessOut,
            "description": "A dependency failed or did not answer in time; ``checks`` names it.",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when every configured dependency answers: the database, the cache and (when
    ``HUB_BROKER_URL`` is set) the broker; 503 naming the failing ones otherwise."""
    readiness: Readiness | None = getattr(request.app.state, "readiness", None)
    if readiness is None:
        readiness = request.app.state.readiness = Readiness(request.app.state.container)
    checks = await readiness.answers()
    ready = all(value == "ok" for value in checks.values())
    body = ReadinessOut(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
