"""What a webhook benchmark sets up around the hub and takes down again.

``bench/webhooks.py`` and ``bench/webhook_flood.py`` both run the API (and more) against a
PostgreSQL schema and Redis key prefixes of their own, seeded with one seller and its shop, and
must leave nothing behind on services other runs and engineers share. How that is done lives
here once, so the two measure the same set-up and clean up the same way.
"""

from __future__ import annotations

import secrets
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from bench.loadgen import Target
from bench.order_reads import drop_cache_keys, drop_schema, git_state, pin_to
from bench.server import ApiServer
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import bootstrap
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.db import create_db_engine
from hub.infrastructure.migrations import upgrade
from hub.infrastructure.uow import SqlUnitOfWork
from hub.settings import Settings

# The API gets a core of its own and the load generator the other, so neither measures the
# other's work; everything else floats.
SERVER_CORE, CLIENT_CORE = 0, 1
# Random per run: the result file names them but never shows their values.
HIDDEN_ENV = ("HUB_ADMIN_API_KEY", "HUB_SECRET_KEYS")


# ---------------------------------------------------------------------------------------------
# The hub's processes
# ---------------------------------------------------------------------------------------------


def hub_env(
    *,
    database_url: str,
    schema: str,
    secret_keys: str,
    cache_url: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The whole ``HUB_*`` environment of the hub's processes: the servers inherit none from
    the shell, so a developer's own settings cannot leak into the figures."""
    return {
        "HUB_DATABASE_URL": database_url,
        "HUB_DB_SCHEMA": schema,
        "HUB_SECRET_KEYS": secret_keys,
        "HUB_ADMIN_API_KEY": secrets.token_urlsafe(24),
        "HUB_CACHE_URL": cache_url,
        "HUB_LOG_LEVEL": "WARNING",
        **extra,
    }


def recorded_env(
    env: Mapping[str, str],
    hidden: Sequence[str] = HIDDEN_ENV,
    notes: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment as the result file records it: reproducible, without the secrets."""
    return {
        **{key: value for key, value in env.items() if key not in hidden},
        **dict.fromkeys(hidden, "<random per run>"),
        **(notes or {}),
        "other HUB_* settings": "defaults; none inherited",
    }


def pin_load_generator(cpu_count: int) -> bool:
    """Pin this process (the load generator) to its core; False where there is no second
    core to spare or pinning is not possible."""
    return cpu_count >= 2 and pin_to(CLIENT_CORE)


def api_server(
    target: Target, env: Mapping[str, str], log_path: Path, *, pinned: bool
) -> ApiServer:
    """The API under uvicorn, on its own core when the load generator was pinned to the other."""
    return ApiServer(
        target=target, env=env, log_path=log_path, core=SERVER_CORE if pinned else None
    )


def post_request(target: Target, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The bytes of one keep-alive POST (the load generator only builds GETs itself).

    The pool's single retry of a request whose reused connection died unanswered stays safe for
    webhook POSTs: the same delivery again is stored as a duplicate, never as a second event.
    """
    lines = [f"POST {path} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    lines += [f"{name}: {value}" for name, value in (*target.headers, *headers.items())]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---------------------------------------------------------------------------------------------
# The run's data
# ---------------------------------------------------------------------------------------------


def migrate(database_url: str, schema: str) -> None:
    """Create the run's schema at the current revision (the API does not migrate PostgreSQL)."""
    engine = create_db_engine(database_url, schema=schema)
    try:
        upgrade(engine, schema=schema)
    finally:
        engine.dispose()


@contextmanager
def seeding(settings: Settings) -> Iterator[SqlUnitOfWork]:
    """One transaction on a container of its own, committed when the block ends without an
    error; the container is closed either way, so the bench holds no pool during the run."""
    container = bootstrap(settings)
    try:
        with container.uow() as uow:
            yield uow
            uow.commit()
    finally:
        container.close()


def add_seller(uow: SqlUnitOfWork, name: str) -> int:
    seller, _ = create_seller(uow, name)
    assert seller.id is not None
    return seller.id


def add_shop(
    uow: SqlUnitOfWork,
    *,
    seller_id: int,
    marketplace: Marketplace,
    external_id: str,
    name: str,
    credentials: dict[str, Any],
    api_base_url: str | None = None,
    location_id: str | None = None,
) -> int:
    """The seller's shop, created with the seller's own principal as the API would."""
    shop = shops.create_shop(
        uow,
        shops.CreateShop(
            seller_id=seller_id,
            marketplace=marketplace,
            external_id=external_id,
            name=name,
            api_base_url=api_base_url,
            location_id=location_id,
            credentials=credentials,
        ),
        Principal(seller_id=seller_id),
    )
    assert shop.id is not None
    return shop.id


def remove_run_data(
    database_url: str,
    schema: str,
    cache_url: str,
    cache_prefixes: Sequence[str],
    *,
    keep_schema: bool = False,
) -> dict[str, Any]:
    """Drop the run's schema and cache keys, each step on its own so one failure skips nothing;
    what happened to each, for the result file."""
    done: dict[str, Any] = {}
    if keep_schema:
        done["schema"] = f"kept {schema}"
    else:
        try:
            drop_schema(database_url, schema)
            done["schema"] = "dropped"
        except Exception as error:  # report and go on: the other resources still need it
            done["schema"] = f"FAILED: {error!r}"
    try:
        done["cache_keys_removed"] = drop_cache_keys(cache_url, cache_prefixes)
    except Exception as error:
        done["cache_keys_removed"] = f"FAILED: {error!r}"
    return done


# ---------------------------------------------------------------------------------------------
# The run itself
# ---------------------------------------------------------------------------------------------


def _raise_exit(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """A SIGTERM unwinds through the ``finally`` blocks that clean up, as Ctrl-C does; the
    default would kill the run and leave its schema, keys and servers behind."""
    signal.signal(signal.SIGTERM, _raise_exit)


def result_header(benchmark: str, *, quick: bool, cpu_count: int) -> dict[str, Any]:
    """What every result file starts with, so runs can be told apart and compared."""
    return {
        "benchmark": benchmark,
        "mode": "quick" if quick else "full",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "cpu_count": cpu_count,
        "python": sys.version.split()[0],
    }
