"""Connectors are found through entry points: a separately installed distribution adds one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from connectors import registry
from connectors.contract import ConnectorConfig

FAKE_MODULE = """
from connectors.contract import Capabilities, ImageLimits, RateLimitModel, WebhookManagement
from hub.domain.shops import PushKind


class FakeConnector:
    capabilities = Capabilities(
        marketplace="fakemarket",
        push_kinds=(PushKind.LISTING,),
        stock_batch_size=7,
        images=ImageLimits(None, 1000, 1000, None, None, ("png",)),
        rate_limit=RateLimitModel.NONE,
        webhook_management=WebhookManagement.MANUAL,
        orders_sorted_by_update=False,
    )

    def __init__(self, config):
        self.config = config

    def close(self):
        pass


def create(config):
    return FakeConnector(config)
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution 'installed' by putting its files on sys.path, as pip would."""
    (tmp_path / "fake_marketplace_plugin.py").write_text(FAKE_MODULE)
    dist_info = tmp_path / "fake_marketplace_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-marketplace-plugin\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[hub.connectors]\nfakemarket = fake_marketplace_plugin:create\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fake_marketplace_plugin", None)


def test_shopify_ships_as_an_entry_point() -> None:
    assert "shopify" in registry.discovered()


def test_a_separately_installed_distribution_adds_a_connector(fake_distribution: Path) -> None:
    assert "fakemarket" in registry.discovered()
    connector = registry.create("fakemarket", ConnectorConfig())
    assert connector.capabilities.stock_batch_size == 7


def test_unknown_marketplace_names_what_is_installed() -> None:
    with pytest.raises(registry.UnknownMarketplace, match="shopify"):
        registry.factory("nosuchmarket")


def test_cli_lists_connectors_with_capabilities(fake_distribution: Path) -> None:
    result = CliRunner().invoke(app, ["connectors", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed["fakemarket"]["webhook_management"] == "manual"
    assert listed["fakemarket"]["stock_batch_size"] == 7
    table = CliRunner().invoke(app, ["connectors", "list"])
    assert "fakemarket" in table.output
