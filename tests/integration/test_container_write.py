"""``Container.write``: a write PostgreSQL picked as a deadlock's victim runs again (nothing of
the failed attempt committed); any other error is raised at once."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from hub.application.sellers import create_seller
from hub.bootstrap import Container
from hub.infrastructure.uow import SqlUnitOfWork


class Victim(Exception):
    sqlstate = "40P01"


class Other(Exception):
    sqlstate = "57014"  # query_canceled: not worth repeating


def test_a_deadlock_victim_is_run_again_and_commits_once(container: Container) -> None:
    calls: list[int] = []

    def work(uow: SqlUnitOfWork) -> int:
        seller, _ = create_seller(uow, f"Attempt {len(calls) + 1}")
        calls.append(seller.id or 0)
        if len(calls) == 1:
            raise OperationalError("UPDATE bindings", {}, Victim())
        return seller.id or 0

    assert container.write(work) == calls[-1]
    assert len(calls) == 2
    with container.uow() as uow:
        assert [s.name for s in uow.sellers.list()] == ["Attempt 2"]


def test_other_database_errors_are_not_repeated(container: Container) -> None:
    calls: list[int] = []

    def work(_uow: SqlUnitOfWork) -> None:
        calls.append(1)
        raise OperationalError("SELECT", {}, Other())

    with pytest.raises(OperationalError):
        container.write(work)
    assert calls == [1]
