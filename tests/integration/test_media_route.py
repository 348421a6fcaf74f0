"""``GET /media/{key}``: the signature is the only credential; the object streams from storage.

The app here is the media router alone, with the hub's error handlers and the two pieces of state
the real lifespan sets; the stores are the local folder and S3 on moto's server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from hub.api import media
from hub.api.errors import install_error_handlers
from imaging.signed_urls import sign
from imaging.storage import LocalFolderStore, ObjectStore, S3Store, StoredObject, image_key

SECRET = b"route-secret"
BASE = "http://testserver"
KEY = image_key("cd" * 32, "shopify", "0a1b", "png")
WEEK = 7 * 24 * 3600
BODY = bytes(range(256)) * 12_000  # ~3 MB: many chunks


def app_with(store: ObjectStore) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(media.router)
    app.state.object_store = store
    app.state.media_url_secret = SECRET
    return app


def path_of(key: str = KEY, *, ttl: int = WEEK, now: float | None = None) -> str:
    """The path and query of a signed URL, as a marketplace would request it."""
    parts = urlsplit(sign(key, secret=SECRET, base_url=BASE, ttl_seconds=ttl, now=now))
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def local_store(tmp_path: Path) -> LocalFolderStore:
    store = LocalFolderStore(tmp_path)
    store.put(KEY, BODY, content_type="image/png")
    return store


@pytest.fixture
def client(local_store: LocalFolderStore) -> Iterator[TestClient]:
    with TestClient(app_with(local_store)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server.get_host_and_port()[1]
    server.stop()


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


class TestGetMedia:
    def test_a_valid_signature_streams_the_object_without_an_api_key(
        self, client: TestClient
    ) -> None:
        response = client.get(path_of())
        assert response.status_code == 200
        assert response.content == BODY

    def test_headers_name_type_length_and_a_cache_lifetime_within_the_expiry(
        self, client: TestClient
    ) -> None:
        response = client.get(path_of())
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-length"] == str(len(BODY))
        max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
        assert WEEK - 60 <= max_age <= WEEK
        assert response.headers["x-content-type-options"] == "nosniff"

    def test_an_expired_url_is_403(self, client: TestClient) -> None:
        response = client.get(path_of(now=time.time() - WEEK - 1))
        assert_refused(response, 403, "forbidden")

    def test_a_tampered_signature_is_403(self, client: TestClient) -> None:
        path = path_of()
        tampered = path[:-1] + ("0" if path[-1] != "0" else "1")
        assert_refused(client.get(tampered), 403, "forbidden")

    def test_a_moved_expiry_is_403(self, client: TestClient) -> None:
        path = path_of()
        expires = path.split("expires=")[1].split("&")[0]
        later = path.replace(f"expires={expires}", f"expires={int(expires) + WEEK}")
        assert_refused(client.get(later), 403, "forbidden")

    def test_a_signature_for_another_key_is_403(self, client: TestClient) -> None:
        other = image_key("cd" * 32, "etsy", "0a1b", "png")
        query = path_of(other).split("?")[1]
        assert_refused(client.get(f"/media/{KEY}?{query}"), 403, "forbidden")

    @pytest.mark.parametrize("query", ["", "?expires=99999999999", "?signature=" + "a" * 64])
    def test_a_missing_signature_is_403(self, client: TestClient, query: str) -> None:
        assert_refused(client.get(f"/media/{KEY}{query}"), 403, "forbidden")

    def test_an_api_key_is_no_substitute_for_a_signature(self, client: TestClient) -> None:
        response = client.get(f"/media/{KEY}", headers={"Authorization": "Bearer anything"})
        assert_refused(response, 403, "forbidden")

    def test_a_signed_url_for_a_missing_object_is_404(self, client: TestClient) -> None:
        missing = image_key("ef" * 32, "shopify", "0a1b", "png")
        assert_refused(client.get(path_of(missing)), 404, "not_found")

    def test_a_signed_key_that_could_escape_the_store_is_404(self, client: TestClient) -> None:
        assert_refused(client.get(path_of("images/.hidden")), 404, "not_found")

    def test_streams_from_s3(self, moto_port: int) -> None:
        store = S3Store(
            bucket=f"hub-media-{uuid.uuid4().hex[:12]}",
            endpoint_url=f"http://127.0.0.1:{moto_port}",
            access_key_id="AKIATEST",
            secret_access_key="test-secret",
            create_bucket=True,
        )
        store.put(KEY, BODY, content_type="image/png")
        with TestClient(app_with(store)) as s3_client:
            response = s3_client.get(path_of())
        assert (response.status_code, response.content) == (200, BODY)
        assert response.headers["content-length"] == str(len(BODY))
        store.delete(KEY)
        store.client.delete_bucket(Bucket=store.bucket)


class RecordingChunks(Iterator[bytes]):
    """Chunks that only the caller can close, and that remember being closed."""

    def __init__(self, inner: Iterator[bytes]) -> None:
        self._inner = inner
        self.closed = 0

    def __next__(self) -> bytes:
        return next(self._inner)

    def close(self) -> None:
        self.closed += 1
        self._inner.close()  # type: ignore[attr-defined]


class ClosingRecorder(LocalFolderStore):
    """The local folder, handing out readers that record whether the route closed them."""

    readers: list[RecordingChunks]

    def open(self, key: str) -> tuple[StoredObject, Iterator[bytes]]:
        stored, chunks = super().open(key)
        self.readers = [RecordingChunks(chunks)]
        return stored, self.readers[0]


class TestStreaming:
    def test_the_route_closes_the_stores_reader(self, tmp_path: Path) -> None:
        store = ClosingRecorder(tmp_path)
        store.put(KEY, BODY, content_type="image/png")
        with TestClient(app_with(store)) as recording_client:
            assert recording_client.get(path_of()).status_code == 200
        assert store.readers[0].closed == 1


class TestHeadMedia:
    def test_a_valid_signature_gives_the_headers_without_a_body(self, client: TestClient) -> None:
        response = client.head(path_of())
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(BODY))
        assert response.headers["content-type"] == "image/png"
        assert response.content == b""

    def test_an_expired_url_is_403(self, client: TestClient) -> None:
        assert client.head(path_of(now=time.time() - WEEK - 1)).status_code == 403

    def test_a_missing_object_is_404(self, client: TestClient) -> None:
        missing = image_key("ef" * 32, "shopify", "0a1b", "png")
        assert client.head(path_of(missing)).status_code == 404
