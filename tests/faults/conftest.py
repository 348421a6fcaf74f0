"""Serial tests (they cut or restart real services) run after everything else in a session,
whatever order they were collected in: `make test` also runs them in a pytest run of their own,
last (see the Makefile)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("serial") is not None)
