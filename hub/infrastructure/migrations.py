"""Run the Alembic migrations shipped in the ``migrations`` package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

import migrations


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def upgrade(engine: Engine, revision: str = "head", *, schema: str | None = None) -> None:
    """Bring the database the engine points at (its schema included) to ``revision``."""
    config = alembic_config()
    if schema and engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
