"""`POST /products/{id}/images`: the body is the file, streamed with a byte counter; bad or
oversized files are refused with a clear error and store nothing; only the owner may upload."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.infrastructure.images import list_images
from tests.conftest import ADMIN_KEY, Backend
from tests.factories import World

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def world(backend: Backend) -> Iterator[World]:
    settings = backend.settings.model_copy(update={"max_upload_bytes": 200_000})
    container = bootstrap(settings)
    yield World(container)
    container.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(container=world.container)) as test_client:
        yield test_client


def url(world: World) -> str:
    return f"/products/{world.product.id}/images"


def test_an_upload_is_stored_listed_and_idempotent_by_content(
    world: World, client: TestClient
) -> None:
    body = jpeg(800, 600)
    first = client.post(url(world), params={"rank": 1}, content=body, headers=ADMIN)
    assert first.status_code == 201, first.text
    assert first.json()["width"] == 800
    assert first.json()["role"] == "mockup"
    again = client.post(
        url(world), params={"rank": 0, "role": "print"}, content=body, headers=ADMIN
    )
    assert again.json()["id"] == first.json()["id"]  # the same bytes: one image, new role
    listed = client.get(url(world), headers=ADMIN).json()
    assert [(i["role"], i["rank"]) for i in listed] == [("print", 0)]


def test_oversized_empty_and_foreign_uploads_are_refused_and_store_nothing(
    world: World, client: TestClient
) -> None:
    too_big = client.post(url(world), content=b"\xff" * 300_000, headers=ADMIN)
    assert too_big.status_code == 413
    empty = client.post(url(world), content=b"", headers=ADMIN)
    assert empty.status_code == 422
    assert "empty" in empty.json()["error"]["message"]
    wrong_variant = client.post(
        url(world), params={"variant_id": 999_999}, content=jpeg(10, 10), headers=ADMIN
    )
    assert wrong_variant.status_code == 404
    with world.container.uow() as uow:
        from hub.application.sellers import create_seller

        _, other = create_seller(uow, "Someone else")
        uow.commit()
    foreign = client.post(
        url(world), content=jpeg(10, 10), headers={"Authorization": f"Bearer {other.key}"}
    )
    assert foreign.status_code == 404
    with world.container.engine.connect() as db:
        assert list_images(db, world.product.id or 0) == []
