"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import sync.infrastructure.tables  # noqa: F401  (the sync engine's tables)
from hub.bootstrap import Container
from hub.infrastructure.tables import Base


def test_models_and_migrations_agree(container: Container) -> None:
    with container.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrated_schema_is_at_head(container: Container) -> None:
    from alembic.script import ScriptDirectory

    from hub.infrastructure.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with container.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
