"""Alembic environment: the URL and schema come from the caller (``hub db upgrade``) or Settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import sync.infrastructure.tables  # noqa: F401  (registers the sync tables)
from hub.infrastructure.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    from hub.infrastructure.db import create_db_engine
    from hub.settings import Settings

    settings = Settings()
    engine = create_db_engine(settings.resolved_database_url, schema=settings.db_schema)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `hub db upgrade`")
main()
