"""The leases one message's run took, so a retry of that message can take them back at once.

A run claims an operation under a lease, then fails before it could let go: PostgreSQL went
away mid-run, or a bug raised. The retry is the same message sent again once that run has
ended, so nothing else holds the lease in its name; without its token the retry would find the
operation "running elsewhere" and drop it, leaving it stuck until the lease ran out (minutes).
The worker opens a scope per message with the tokens the message carries, ``claim`` records
what it takes, and the worker copies that into the retried message. A duplicate delivery of
the original message carries no token, so it can never take a lease a live run still holds.

When the retry cannot be sent (the broker is away too), the worker lets go of the leases in
the database instead (``operations.release_taken``): RabbitMQ then redelivers the original
message, which finds its operations queued again.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import Engine


@dataclass
class _Scope:
    resumable: dict[int, str] = field(default_factory=dict)
    taken: dict[int, str] = field(default_factory=dict)
    engine: Engine | None = None  # where the leases were taken, to let go of them there


_scope: ContextVar[_Scope | None] = ContextVar("operation_leases", default=None)


def open_scope(carried: Mapping[str, str] | None) -> None:
    """Start a message's run: ``carried`` is what an earlier run of the same message took."""
    resumable = {int(operation_id): token for operation_id, token in (carried or {}).items()}
    _scope.set(_Scope(resumable=resumable))


def resumable_token(operation_id: int) -> str | None:
    scope = _scope.get()
    return scope.resumable.get(operation_id) if scope is not None else None


def record_taken(operation_id: int, token: str, engine: Engine) -> None:
    scope = _scope.get()
    if scope is not None:
        scope.taken[operation_id] = token
        scope.engine = engine


def taken_by_this_run() -> tuple[Engine | None, dict[int, str]]:
    """The leases this run claimed itself (not the ones it merely carried), and where."""
    scope = _scope.get()
    if scope is None:
        return None, {}
    return scope.engine, dict(scope.taken)


def taken() -> dict[str, str]:
    """What this run took (and what it could resume), keyed for a message's JSON options."""
    scope = _scope.get()
    if scope is None:
        return {}
    held = {**scope.resumable, **scope.taken}
    return {str(operation_id): token for operation_id, token in held.items()}
