"""How long the sync engine keeps its own bookkeeping, and pruning what is older.

Three kinds of rows grow with traffic and are worth nothing once old:

* inbound events, handled or rejected, after ``HUB_RETENTION_EVENTS_DAYS`` (default 30). An
  event's row is also what recognises a redelivery of the same webhook as a duplicate, so keep it
  well past the marketplaces' redelivery windows (a few days at most); a redelivery after that is
  stored again and handled again, which imports are built to survive;
* attempts (one row per remote call) of finished operations, after
  ``HUB_RETENTION_ATTEMPTS_DAYS`` (default 30); the operations themselves stay: they are the
  idempotency keys of outbound writes and the history `hub jobs` shows;
* published outbox rows, after ``HUB_RETENTION_OUTBOX_DAYS`` (default 7).

0 days keeps a kind forever. The scheduler prunes every ``PRUNING_INTERVAL_SECONDS`` with a
budget per run (a backlog goes on at the next tick, from where the last one stopped); `hub prune`
prunes everything due at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from hub.settings import Settings
from sync.infrastructure import pruning
from sync.infrastructure.pruning import PRUNE_BATCH

DEFAULT_EVENTS_DAYS = 30
DEFAULT_ATTEMPTS_DAYS = 30
DEFAULT_OUTBOX_DAYS = 7
DONE = -1  # in ``Pruning.resume``: the kind reached its cutoff in this cycle already


@dataclass(frozen=True)
class Retention:
    """Days each kind is kept (0: forever)."""

    events_days: int = DEFAULT_EVENTS_DAYS
    attempts_days: int = DEFAULT_ATTEMPTS_DAYS
    outbox_days: int = DEFAULT_OUTBOX_DAYS

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            events_days=int(getattr(settings, "retention_events_days", DEFAULT_EVENTS_DAYS)),
            attempts_days=int(getattr(settings, "retention_attempts_days", DEFAULT_ATTEMPTS_DAYS)),
            outbox_days=int(getattr(settings, "retention_outbox_days", DEFAULT_OUTBOX_DAYS)),
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime | None]:
        """Per kind, the time before which rows go (``None``: kept forever)."""
        days = {
            "events": self.events_days,
            "attempts": self.attempts_days,
            "outbox": self.outbox_days,
        }
        return {kind: now - timedelta(days=n) if n > 0 else None for kind, n in days.items()}


@dataclass
class Pruning:
    """Rows deleted per kind; ``complete`` False when a budget left some for the next run."""

    events: int = 0
    attempts: int = 0
    outbox: int = 0
    complete: bool = True
    # a bounded run that left work: per kind, where its walk stopped (or DONE); else empty
    resume: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "attempts": self.attempts,
            "outbox": self.outbox,
            "complete": self.complete,
        }

    def summary(self) -> str:
        return (
            f"{self.events} events, {self.attempts} attempts and {self.outbox} outbox rows "
            "deleted" + ("" if self.complete else " (more left for the next run)")
        )


def prune(
    engine: Engine,
    retention: Retention,
    now: datetime,
    *,
    budget: int | None = None,
    batch: int = PRUNE_BATCH,
    resume: Mapping[str, int] | None = None,
) -> Pruning:
    """Delete every kind's rows past its retention; ``budget``: at most that many rows read per
    kind (``None``: all that are due); ``resume``: the ``resume`` of the previous bounded run,
    so this one goes on where that one stopped and skips the kinds it finished. ``complete``
    once every kind has reached its cutoff in this cycle of runs."""
    cutoffs = retention.cutoffs(now)
    resume = resume or {}
    report = Pruning()
    positions: dict[str, int] = {}
    for kind in ("events", "attempts", "outbox"):
        cutoff, position = cutoffs[kind], resume.get(kind, 0)
        if cutoff is None or position == DONE:
            positions[kind] = DONE
            continue
        if kind == "events":
            done = pruning.prune_events(engine, cutoff, batch=batch, budget=budget)
        else:
            walk = pruning.prune_attempts if kind == "attempts" else pruning.prune_outbox
            done = walk(engine, cutoff, batch=batch, budget=budget, after=position)
        setattr(report, kind, done.deleted)
        positions[kind] = DONE if done.complete else done.resume_after
        report.complete = report.complete and done.complete
    report.resume = {} if report.complete else positions
    return report
