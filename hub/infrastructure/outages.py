"""One answer to "is this failure a service being away, or a real error?".

An outage (PostgreSQL, Redis or the broker unreachable, restarting or too slow) heals by itself:
the right answer is to wait ``outage_retry_seconds`` and try again (a 503 with ``Retry-After``
for the API, a delayed retry for the worker). A real error (a constraint, a bug, a deadlock
victim, a refused password) does not heal by waiting, so it must keep its own handling and its
traceback. Every caller asks ``is_outage`` so the API and the worker never disagree.
"""

from __future__ import annotations

import errno
import socket
import sqlite3

import dramatiq.errors
import httpx
import psycopg
import psycopg_pool
import redis.exceptions
import sqlalchemy.exc

__all__ = ["is_outage"]

# Errnos of a peer that cannot be reached or went away mid-conversation.
CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
    }
)

# SQLSTATE classes of a server that is unreachable or going away: 08 connection exception,
# 57P operator intervention (admin/crash shutdown, cannot connect now). 57014 (a cancelled
# statement) and 40P01/40001 (deadlock/serialization victims) are deliberately not here.
OUTAGE_SQLSTATE_PREFIXES = ("08", "57P")

# Redis refusals that waiting cannot cure, although redis-py derives them from ConnectionError.
_REDIS_NOT_OUTAGES: tuple[type[BaseException], ...] = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
)

# Chains are short; the bound only protects against pathological self-referencing chains.
_MAX_CHAIN = 32


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) means a service is away rather than a real error.

    The chain is walked through ``__cause__`` then ``__context__``; the first link of a known
    kind decides, so a deadlock wrapped by SQLAlchemy stays a deadlock even though its wrapper
    is an ``OperationalError``, and a plain wrapper (``RuntimeError(...) from outage``) is as
    much an outage as what it wraps.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        verdict = _classify(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return False


def _classify(exc: BaseException) -> bool | None:
    """True: an outage. False: certainly a real error. None: this link cannot tell."""
    if isinstance(exc, httpx.HTTPError):
        # Only marketplaces are reached over HTTP: one being away is the connector's business
        # (its own retries, Retry-After, a 502), never a pause of the hub's own work.
        return False
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # QueuePool exhausted for pool_timeout
        return True
    if isinstance(exc, sqlalchemy.exc.DisconnectionError):  # pre-ping gave up on the server
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if exc.orig is not None and exc.orig is not exc:
            verdict = _classify(exc.orig)
            if verdict is not None:
                return verdict
        # An OperationalError from a driver we cannot look into: the DBAPI reserves that
        # class for errors "not under the programmer's control", i.e. the server side.
        return True if isinstance(exc, sqlalchemy.exc.OperationalError) else None
    if isinstance(exc, psycopg_pool.PoolTimeout):  # checked before its base OperationalError
        return True
    if isinstance(exc, psycopg.OperationalError):
        sqlstate = exc.sqlstate
        return sqlstate is None or sqlstate.startswith(OUTAGE_SQLSTATE_PREFIXES)
    if isinstance(exc, psycopg.Error):
        return False
    if isinstance(exc, sqlite3.Error):
        # The embedded database is a local file: "locked" is contention, not a service away.
        return False
    if isinstance(exc, redis.exceptions.RedisError):
        if isinstance(exc, _REDIS_NOT_OUTAGES):
            return False
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
        return None
    if isinstance(exc, dramatiq.errors.BrokerConnectionError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError) and exc.errno in CONNECTION_ERRNOS:
        return True
    return None
