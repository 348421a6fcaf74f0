"""Recording an operation's outcome survives PostgreSQL choosing it as a deadlock's victim: it
is run again (else the operation would sit under its lease and repeat its remote call later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from sync.infrastructure import operations as ops


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class FakeEngine:
    def __init__(self) -> None:
        self.transactions = 0

    @contextmanager
    def begin(self) -> Iterator[str]:
        self.transactions += 1
        yield f"connection {self.transactions}"


def failing(times: int, sqlstate: str) -> Any:
    calls: list[str] = []

    def work(db: str) -> str:
        calls.append(db)
        if len(calls) <= times:
            raise OperationalError("UPDATE binding_push_states", {}, DriverError(sqlstate))
        return "recorded"

    work.calls = calls  # type: ignore[attr-defined]
    return work


def test_a_deadlock_victim_is_run_again_in_a_new_transaction() -> None:
    engine, work = FakeEngine(), failing(2, "40P01")
    assert ops.in_transaction(engine, work) == "recorded"  # type: ignore[arg-type]
    assert work.calls == ["connection 1", "connection 2", "connection 3"]


def test_other_database_errors_are_not_retried() -> None:
    engine, work = FakeEngine(), failing(1, "53300")  # too_many_connections
    with pytest.raises(OperationalError):
        ops.in_transaction(engine, work)  # type: ignore[arg-type]
    assert engine.transactions == 1


def test_a_victim_every_time_gives_up_after_a_few_tries() -> None:
    engine, work = FakeEngine(), failing(100, "40001")
    with pytest.raises(OperationalError):
        ops.in_transaction(engine, work)  # type: ignore[arg-type]
    assert engine.transactions == ops.VICTIM_RETRIES
