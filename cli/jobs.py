"""`hub jobs`: sync operations (stock batches, tracking pushes, catalog scans, image renders)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from cli.output import (
    RELAY_NOTE,
    fail,
    hub,
    json_option,
    print_fields,
    print_json,
    print_table,
)
from hub.bootstrap import Container
from sync.infrastructure import operations as ops

app = typer.Typer(help="Sync jobs: list, show, failed, retry.", no_args_is_help=True)
COLUMNS = ["id", "kind", "shop_id", "status", "attempts", "updated_at", "last_error"]


class JobStatus(StrEnum):
    QUEUED = ops.QUEUED
    RUNNING = ops.RUNNING
    SUCCEEDED = ops.SUCCEEDED
    SUPERSEDED = ops.SUPERSEDED
    FAILED = ops.FAILED


def _list(
    shop: int | None, status: str | None, kind: str | None, limit: int, as_json: bool, empty: str
) -> None:
    with hub() as container, container.engine.connect() as db:
        found = ops.list_operations(db, shop_id=shop, status=status, kind=kind, limit=limit)
    rows = [job.as_dict() for job in found]
    if as_json:
        print_json(rows)
        return
    print_table(rows, COLUMNS, empty=empty)


@app.command("list")
def list_jobs(
    shop: int | None = typer.Option(None, "--shop", help="Only this shop's jobs."),
    status: JobStatus | None = typer.Option(None, "--status", help="Only jobs in this state."),
    kind: str | None = typer.Option(None, "--kind", help="e.g. stock.batch, catalog.pull."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    as_json: bool = json_option(),
) -> None:
    """Jobs, newest first."""
    _list(shop, status.value if status else None, kind, limit, as_json, empty="no jobs match")


@app.command("failed")
def failed(
    shop: int | None = typer.Option(None, "--shop", help="Only this shop's jobs."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    as_json: bool = json_option(),
) -> None:
    """Jobs that ran out of budget or were refused; `hub jobs retry ID` runs one again."""
    _list(shop, ops.FAILED, None, limit, as_json, empty="no failed jobs")


def _load(container: Container, job_id: int, what: str) -> ops.Operation:
    with container.engine.connect() as db:
        job = ops.get(db, job_id)
    if job is None:
        fail(f"{what}: job {job_id} does not exist; see `hub jobs list`")
    return job


@app.command("show")
def show(job_id: int, as_json: bool = json_option()) -> None:
    """One job: status, attempts (one per real remote call), last error, result, payload."""
    from sqlalchemy import select

    with hub() as container:
        job = _load(container, job_id, f"job {job_id} not shown")
        with container.engine.connect() as db:
            attempts = [
                {
                    "at": row.created_at,
                    "status": row.status,
                    "duration_ms": row.duration_ms,
                    "error": row.error,
                }
                for row in db.execute(
                    select(ops.ATTEMPTS)
                    .where(ops.ATTEMPTS.c.operation_id == job_id)
                    .order_by(ops.ATTEMPTS.c.id)
                )
            ]
    document: dict[str, Any] = {**job.as_dict(), "attempt_log": attempts}
    if as_json:
        print_json(document)
        return
    print_fields(job.as_dict())
    for attempt in attempts:
        typer.echo(
            f"  attempt at {attempt['at']:%Y-%m-%d %H:%M:%S}: {attempt['status']} "
            f"({attempt['duration_ms']} ms){' ' + attempt['error'] if attempt['error'] else ''}"
        )
    if job.status == ops.FAILED:
        typer.echo(f"retry it with `hub jobs retry {job_id}`")


@app.command("retry")
def retry(job_id: int) -> None:
    """Run a failed job again with a fresh budget (its frozen payload unchanged)."""
    what = f"job {job_id} not retried"
    with hub() as container:
        job = _load(container, job_id, what)
        if job.kind not in ops.OPERATION_ACTORS:
            fail(f"{what}: jobs of kind {job.kind} have no actor to run them")
        with container.engine.begin() as db:
            retried = ops.retry(db, job)
        if not retried:
            fail(f"{what}: it is {job.status}; only failed jobs are retried")
    shop = f" (shop {job.shop_id})" if job.shop_id is not None else ""
    typer.echo(f"job {job_id} {job.kind}{shop} queued again with a fresh budget; {RELAY_NOTE}")
