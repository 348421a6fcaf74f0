"""The `hub` CLI on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app
from hub.api.app import create_app
from hub.settings import Settings


def test_db_upgrade_then_sellers_add_prints_a_working_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["sellers", "add", "Cli Seller"])
    assert result.exit_code == 0, result.output
    key = result.output.split("api key: ")[1].strip()
    with TestClient(create_app(Settings())) as client:
        response = client.get("/orders", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_demo_seeds_orders_and_prints_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("HUB_ADMIN_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["demo", "--seed-only"])
    assert result.exit_code == 0, result.output
    key = result.output.split("seller API key: ")[1].split()[0]
    with TestClient(create_app(Settings())) as client:
        orders = client.get("/orders", headers={"Authorization": f"Bearer {key}"}).json()
    assert len(orders["items"]) == 24
