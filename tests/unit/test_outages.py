"""``is_outage``: services away are outages, real errors (deadlocks included) are not."""

from __future__ import annotations

import errno
import socket
import sqlite3

import dramatiq.errors
import httpx
import psycopg
import psycopg.errors
import psycopg_pool
import pytest
import redis.exceptions
import sqlalchemy.exc

from hub.infrastructure.outages import is_outage


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy raises around a driver error: ``orig`` kept, chained as the cause."""
    kind = (
        sqlalchemy.exc.OperationalError
        if isinstance(orig, psycopg.OperationalError | sqlite3.OperationalError)
        else sqlalchemy.exc.DBAPIError
    )
    try:
        try:
            raise orig
        except BaseException as inner:
            raise kind("SELECT 1", {}, inner, connection_invalidated=invalidated) from inner
    except sqlalchemy.exc.DBAPIError as outer:
        return outer


def chained(outer: BaseException, inner: BaseException, *, implicit: bool = False) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as caught:
            if implicit:
                raise outer  # noqa: B904 (the implicit __context__ is the point)
            raise outer from caught
    except BaseException as raised:
        return raised


OUTAGES = [
    pytest.param(psycopg.OperationalError("connection failed"), id="psycopg-no-sqlstate"),
    pytest.param(psycopg.errors.ConnectionFailure(), id="psycopg-08006"),
    pytest.param(psycopg.errors.AdminShutdown(), id="psycopg-57P01"),
    pytest.param(psycopg.errors.CannotConnectNow(), id="psycopg-57P03"),
    pytest.param(psycopg_pool.PoolTimeout("no connection"), id="psycopg-pool-timeout"),
    pytest.param(wrapped(psycopg.OperationalError("server closed")), id="sqla-operational"),
    pytest.param(wrapped(psycopg.errors.AdminShutdown()), id="sqla-57P01"),
    pytest.param(
        wrapped(psycopg.DatabaseError("lost"), invalidated=True), id="sqla-connection-invalidated"
    ),
    pytest.param(sqlalchemy.exc.TimeoutError("QueuePool limit"), id="sqla-pool-timeout"),
    pytest.param(sqlalchemy.exc.DisconnectionError("pre-ping"), id="sqla-disconnection"),
    pytest.param(redis.exceptions.ConnectionError("refused"), id="redis-connection"),
    pytest.param(redis.exceptions.TimeoutError("timeout"), id="redis-timeout"),
    pytest.param(redis.exceptions.BusyLoadingError("loading"), id="redis-loading"),
    pytest.param(dramatiq.errors.BrokerConnectionError("amqp"), id="broker-connection"),
    pytest.param(dramatiq.errors.ConnectionClosed(OSError("x")), id="broker-closed"),
    pytest.param(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), id="refused"),
    pytest.param(ConnectionResetError(errno.ECONNRESET, "reset"), id="reset"),
    pytest.param(BrokenPipeError(errno.EPIPE, "pipe"), id="broken-pipe"),
    pytest.param(TimeoutError("slow"), id="timeout"),
    pytest.param(socket.gaierror(socket.EAI_AGAIN, "dns"), id="dns"),
    pytest.param(OSError(errno.EHOSTUNREACH, "no route"), id="oserror-unreachable"),
    pytest.param(
        chained(RuntimeError("could not load"), redis.exceptions.ConnectionError("x")),
        id="wrapper-cause",
    ),
    pytest.param(
        chained(ValueError("while handling"), psycopg.errors.ConnectionFailure(), implicit=True),
        id="wrapper-context",
    ),
]

NOT_OUTAGES = [
    pytest.param(psycopg.errors.DeadlockDetected(), id="psycopg-deadlock"),
    pytest.param(psycopg.errors.SerializationFailure(), id="psycopg-serialization"),
    pytest.param(psycopg.errors.QueryCanceled(), id="psycopg-57014"),
    pytest.param(psycopg.errors.InvalidPassword(), id="psycopg-bad-password"),
    pytest.param(psycopg.errors.UniqueViolation(), id="psycopg-unique"),
    pytest.param(wrapped(psycopg.errors.DeadlockDetected()), id="sqla-deadlock"),
    pytest.param(wrapped(psycopg.errors.UniqueViolation()), id="sqla-integrity"),
    pytest.param(wrapped(sqlite3.OperationalError("database is locked")), id="sqlite-locked"),
    pytest.param(sqlalchemy.exc.NoResultFound(), id="sqla-no-result"),
    pytest.param(redis.exceptions.AuthenticationError("bad password"), id="redis-auth"),
    pytest.param(redis.exceptions.ResponseError("WRONGTYPE"), id="redis-response"),
    pytest.param(dramatiq.errors.ActorNotFound("x"), id="dramatiq-actor"),
    pytest.param(OSError(errno.ENOENT, "no file"), id="oserror-missing-file"),
    pytest.param(ValueError("bad"), id="value-error"),
    pytest.param(KeyError("k"), id="key-error"),
    pytest.param(
        chained(RuntimeError("retry"), psycopg.errors.DeadlockDetected()), id="wrapper-deadlock"
    ),
]


@pytest.mark.parametrize("error", OUTAGES)
def test_services_away_are_outages(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", NOT_OUTAGES)
def test_real_errors_are_not_outages(error: BaseException) -> None:
    assert not is_outage(error)


def test_a_cyclic_chain_ends() -> None:
    first = RuntimeError("a")
    second = RuntimeError("b")
    first.__context__ = second
    second.__context__ = first
    assert not is_outage(first)


def test_a_marketplace_away_is_not_our_outage() -> None:
    """A connector's error wraps httpx's, which wraps the socket's refusal: the chain stops at
    httpx, so an unreachable marketplace keeps its own retry budget instead of waiting forever
    as if the hub's database were away."""
    request = httpx.Request("GET", "https://shop.example/admin")
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise httpx.ConnectError("refused", request=request) from refused
    except httpx.ConnectError as wrapped:
        error = RuntimeError("marketplace unavailable")
        error.__cause__ = wrapped
        assert not is_outage(error)
