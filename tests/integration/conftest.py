"""What the integration tests of the ``hub`` command share: an embedded hub of their own and a
way to run the command against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from hub.bootstrap import Container, bootstrap
from hub.infrastructure.migrations import upgrade
from hub.settings import Settings


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """An embedded, migrated hub in tmp_path; the CLI finds it through HUB_DATA_DIR."""
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    for name in ("HUB_DATABASE_URL", "HUB_DB_SCHEMA", "HUB_CACHE_URL", "HUB_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    container = bootstrap(Settings())
    upgrade(container.engine)
    yield container
    container.close()


def hub(*args: str, input: str | None = None) -> Result:
    """``hub ARGS...`` in this process, as a user would type it (``input`` answers prompts)."""
    return CliRunner().invoke(app, list(args), input=input)


def ok(result: Result) -> Result:
    """The result of a command that had to succeed; its output shows when it did not."""
    assert result.exit_code == 0, result.output
    return result
