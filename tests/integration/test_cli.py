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


def _product(tmp_path: Path) -> int:
    from decimal import Decimal

    from hub.application.catalog import ProductSpec, VariantSpec, create_product
    from hub.application.sellers import create_seller
    from hub.bootstrap import bootstrap
    from hub.domain.sellers import Principal
    from hub.infrastructure.migrations import upgrade

    container = bootstrap(Settings(data_dir=tmp_path / "var"))
    upgrade(container.engine)
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Image seller")
        product = create_product(
            uow,
            ProductSpec(
                seller_id=seller.id or 0,
                title="Poster",
                variants=(VariantSpec(sku="POSTER-A3", price=Decimal("12.00")),),
            ),
            Principal(seller_id=None, is_admin=True),
        )
        uow.commit()
    container.close()
    return product.id or 0


def test_images_add_stores_the_file_and_queues_its_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    product_id = _product(tmp_path)
    picture = tmp_path / "mockup.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(picture)
    result = CliRunner().invoke(
        app, ["images", "add", str(product_id), str(picture), "--rank", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "640x480" in result.output
    stored = list((tmp_path / "var" / "objects" / "images").glob("*/source.png"))
    assert len(stored) == 1
    from hub.bootstrap import bootstrap
    from hub.infrastructure.images import list_images
    from sync.infrastructure.operations import list_operations

    container = bootstrap(Settings())
    with container.engine.connect() as db:
        images = list_images(db, product_id)
        renders = list_operations(db, kind="images.render")
    container.close()
    assert [(i.role, i.rank, i.width) for i in images] == [("mockup", 2, 640)]
    assert [op.status for op in renders] == ["queued"]


def test_images_add_refuses_a_file_that_is_not_an_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    product_id = _product(tmp_path)
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"definitely not a PNG")
    result = CliRunner().invoke(app, ["images", "add", str(product_id), str(notes)])
    assert result.exit_code == 1
    assert f"image not added to product {product_id}: image rejected" in result.output
    assert not (tmp_path / "var" / "objects" / "images").exists()
