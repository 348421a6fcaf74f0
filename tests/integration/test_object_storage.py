"""The object store contract, run on the local folder and on S3 (moto's server over real HTTP).

moto runs as a threaded server on a loopback port, once per module; boto3 reaches it through
HTTP exactly as it reaches MinIO, with a bucket per test. The S3 store's presigned URLs name a
different host (``localhost``) than the one the hub talks to (``127.0.0.1``), as compose does.
"""

from __future__ import annotations

import io
import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from moto.server import ThreadedMotoServer

from imaging.storage import (
    CHUNK_BYTES,
    MIB,
    InvalidObjectKey,
    LocalFolderStore,
    ObjectMissing,
    ObjectStore,
    ObjectStoreError,
    S3Store,
    StoredObject,
    build_store,
    image_key,
    source_key,
)

SHA = "ab" * 32
KEY = image_key(SHA, "etsy", "f00d", "jpg")
ACCESS_KEY_ID = "AKIATESTSTOREKEY"
SECRET_ACCESS_KEY = "s3-secret-never-printed"
PART = 5 * MIB  # S3's smallest multipart part
LARGE = 2 * PART + 123_457  # three parts on S3, many chunks on disk


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server.get_host_and_port()[1]
    server.stop()


def new_s3_store(port: int, **overrides: Any) -> S3Store:
    options: dict[str, Any] = {
        "bucket": f"hub-test-{uuid.uuid4().hex[:12]}",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "public_endpoint_url": f"http://localhost:{port}",
        "region": "us-east-1",
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "create_bucket": True,
        "multipart_threshold": PART,
        "multipart_chunksize": PART,
    }
    return S3Store(**(options | overrides))


def empty_bucket(store: S3Store) -> None:
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    for item in listing.get("Contents", []):
        store.client.delete_object(Bucket=store.bucket, Key=item["Key"])
    store.client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalFolderStore(tmp_path / "objects")
        return
    s3 = new_s3_store(request.getfixturevalue("moto_port"))
    yield s3
    empty_bucket(s3)


@pytest.fixture
def s3(moto_port: int) -> Iterator[S3Store]:
    store = new_s3_store(moto_port)
    yield store
    empty_bucket(store)


class ChunkedSource:
    """A file object that refuses to be read whole and records every read size."""

    def __init__(self, data: bytes, *, seekable: bool) -> None:
        self._buffer = io.BytesIO(data)
        self._seekable = seekable
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the store read the whole source at once")
        self.reads.append(size)
        return self._buffer.read(size)

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if not self._seekable:
            raise OSError("not seekable")
        return self._buffer.seek(offset, whence)

    def tell(self) -> int:
        if not self._seekable:
            raise OSError("not seekable")
        return self._buffer.tell()


class FailingSource:
    """Gives some bytes, then fails, like a client that disconnects mid-upload."""

    def __init__(self, good_bytes: int) -> None:
        self._left = good_bytes

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise ConnectionResetError("client went away")
        n = min(self._left, size if size and size > 0 else self._left)
        self._left -= n
        return b"x" * n


def record_calls(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for name in ("head", "put"):
        original: Callable[..., Any] = getattr(store, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    return calls


def record_requests(store: S3Store) -> list[str]:
    """The HTTP methods boto3 actually sends, in order."""
    sent: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append(request.method)
    )
    return sent


def payload(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class TestKeys:
    def test_image_key_is_content_addressed_by_source_rendition_and_spec(self) -> None:
        assert image_key(SHA, "shopify", "1a2b", "webp") == f"images/{SHA}/shopify-1a2b.webp"

    def test_a_changed_spec_fingerprint_makes_a_new_key(self) -> None:
        assert image_key(SHA, "etsy", "aaaa", "jpg") != image_key(SHA, "etsy", "bbbb", "jpg")

    def test_source_key_sits_beside_the_renditions(self) -> None:
        assert source_key(SHA, ".PNG") == f"images/{SHA}/source.png"

    @pytest.mark.parametrize(
        ("sha", "rendition", "fingerprint", "extension"),
        [
            ("AB" * 32, "etsy", "f0", "jpg"),
            ("ab" * 31, "etsy", "f0", "jpg"),
            (SHA, "../etsy", "f0", "jpg"),
            (SHA, "etsy", "f0/x", "jpg"),
            (SHA, "etsy", "f0", "j.pg"),
            (SHA, "", "f0", "jpg"),
        ],
    )
    def test_parts_that_could_bend_the_key_are_refused(
        self, sha: str, rendition: str, fingerprint: str, extension: str
    ) -> None:
        with pytest.raises(InvalidObjectKey):
            image_key(sha, rendition, fingerprint, extension)


class TestHead:
    def test_missing_key_is_none(self, store: ObjectStore) -> None:
        assert store.head(KEY) is None

    def test_reports_size_and_content_type(self, store: ObjectStore) -> None:
        store.put(KEY, b"jpeg bytes", content_type="image/jpeg")
        assert store.head(KEY) == StoredObject(key=KEY, size=10, content_type="image/jpeg")


class TestPut:
    def test_bytes_are_stored(self, store: ObjectStore) -> None:
        stored = store.put(KEY, b"abc", content_type="image/png")
        assert stored == StoredObject(key=KEY, size=3, content_type="image/png")
        assert store.read(KEY) == b"abc"

    @pytest.mark.parametrize("seekable", [True, False])
    def test_a_large_file_object_is_streamed_in_bounded_reads(
        self, store: ObjectStore, seekable: bool
    ) -> None:
        data = payload(LARGE)
        source = ChunkedSource(data, seekable=seekable)
        stored = store.put(KEY, source, content_type="image/tiff")  # type: ignore[arg-type]
        assert stored.size == LARGE
        assert max(source.reads) <= PART
        assert store.read(KEY) == data

    def test_a_declared_size_that_does_not_match_stores_nothing(self, store: ObjectStore) -> None:
        with pytest.raises(ValueError, match="expected 4 bytes"):
            store.put(KEY, io.BytesIO(b"abc"), content_type="image/png", size=4)
        assert store.head(KEY) is None

    def test_a_failing_source_leaves_no_object(self, store: ObjectStore) -> None:
        with pytest.raises(ConnectionResetError):
            store.put(KEY, FailingSource(3 * CHUNK_BYTES), content_type="image/png")  # type: ignore[arg-type]
        assert store.head(KEY) is None

    def test_a_second_put_replaces_the_object(self, store: ObjectStore) -> None:
        store.put(KEY, b"old", content_type="image/png")
        store.put(KEY, b"newer", content_type="image/jpeg")
        assert store.head(KEY) == StoredObject(key=KEY, size=5, content_type="image/jpeg")
        assert store.read(KEY) == b"newer"


class TestMissingBucket:
    def test_a_put_says_which_bucket_is_missing_and_what_to_do(self, moto_port: int) -> None:
        store = new_s3_store(moto_port, create_bucket=False)
        with pytest.raises(ObjectStoreError, match=rf"{store.bucket}.*NoSuchBucket.*CREATE_BUCKET"):
            store.put(KEY, b"x", content_type="image/png")

    def test_creating_an_existing_bucket_again_is_fine(self, s3: S3Store) -> None:
        s3.ensure_bucket()
        s3.put(KEY, b"x", content_type="image/png")
        assert s3.head(KEY) is not None


class TestPutIfAbsent:
    def test_first_call_writes(self, store: ObjectStore) -> None:
        stored, written = store.put_if_absent(KEY, b"first", content_type="image/png")
        assert (stored.size, written) == (5, True)

    def test_second_call_keeps_the_stored_object(self, store: ObjectStore) -> None:
        store.put_if_absent(KEY, b"first", content_type="image/png")
        stored, written = store.put_if_absent(KEY, b"second!", content_type="image/png")
        assert (stored.size, written) == (5, False)
        assert store.read(KEY) == b"first"

    def test_heads_before_it_puts(
        self, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = record_calls(store, monkeypatch)
        store.put_if_absent(KEY, b"first", content_type="image/png")
        store.put_if_absent(KEY, b"first", content_type="image/png")
        assert calls == ["head", "put", "head"]

    def test_s3_sends_head_then_one_put_and_then_only_head(self, s3: S3Store) -> None:
        sent = record_requests(s3)
        s3.put_if_absent(KEY, io.BytesIO(b"first"), content_type="image/png")
        s3.put_if_absent(KEY, io.BytesIO(b"first"), content_type="image/png")
        assert sent == ["HEAD", "PUT", "HEAD"]


class TestOpen:
    def test_streams_the_object_in_bounded_chunks(self, store: ObjectStore) -> None:
        data = payload(LARGE)
        store.put(KEY, io.BytesIO(data), content_type="image/tiff")
        stored, chunks = store.open(KEY)
        received = list(chunks)
        assert stored == StoredObject(key=KEY, size=LARGE, content_type="image/tiff")
        assert len(received) > 1
        assert max(len(chunk) for chunk in received) <= CHUNK_BYTES
        assert b"".join(received) == data

    def test_missing_key_raises_object_missing(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectMissing) as raised:
            store.open(KEY)
        assert str(raised.value) == f"no stored object under {KEY!r}"


class TestRead:
    def test_returns_the_bytes(self, store: ObjectStore) -> None:
        store.put(KEY, b"small", content_type="image/png")
        assert store.read(KEY) == b"small"

    def test_missing_key_raises_object_missing_a_key_error(self, store: ObjectStore) -> None:
        with pytest.raises(KeyError):
            store.read(KEY)


class TestDelete:
    def test_removes_the_object(self, store: ObjectStore) -> None:
        store.put(KEY, b"gone soon", content_type="image/png")
        store.delete(KEY)
        assert store.head(KEY) is None

    def test_a_missing_key_is_not_an_error(self, store: ObjectStore) -> None:
        store.delete(KEY)
        assert store.head(KEY) is None


BAD_KEYS = [
    "",
    "../escape.png",
    "images/../../escape.png",
    "/etc/passwd",
    "images//double.png",
    "images/./here.png",
    "images/.hidden",
    "images\\windows.png",
    "images/trailing/",
    "images/nul\x00.png",
]


class TestKeyValidation:
    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_every_operation_refuses_a_key_that_could_escape(
        self, store: ObjectStore, key: str
    ) -> None:
        for operation in (
            lambda: store.head(key),
            lambda: store.put(key, b"x", content_type="image/png"),
            lambda: store.open(key),
            lambda: store.read(key),
            lambda: store.delete(key),
            lambda: store.presigned_url(key, 60),
        ):
            with pytest.raises(InvalidObjectKey):
                operation()

    def test_the_local_folder_writes_only_under_its_root(self, tmp_path: Path) -> None:
        root = tmp_path / "objects"
        local = LocalFolderStore(root)
        local.put(KEY, b"x", content_type="image/png")
        for key in BAD_KEYS:
            with pytest.raises(InvalidObjectKey):
                local.put(key, b"x", content_type="image/png")
        outside = {p for p in tmp_path.rglob("*") if root not in p.parents and p != root}
        assert outside == set()

    def test_the_local_folder_leaves_no_temporary_files(self, tmp_path: Path) -> None:
        local = LocalFolderStore(tmp_path)
        local.put(KEY, io.BytesIO(payload(3 * CHUNK_BYTES)), content_type="image/png")
        with pytest.raises(ConnectionResetError):
            local.put(
                image_key(SHA, "etsy", "beef", "jpg"),
                FailingSource(CHUNK_BYTES),  # type: ignore[arg-type]
                content_type="image/jpeg",
            )
        names = sorted(p.name for p in (tmp_path / "images" / SHA).iterdir())
        assert names == [".etsy-f00d.jpg.content-type", "etsy-f00d.jpg"]


class TestPresignedUrl:
    def test_the_local_folder_has_none(self, tmp_path: Path) -> None:
        assert LocalFolderStore(tmp_path).presigned_url(KEY, 600) is None

    def test_s3_names_the_public_endpoint_with_a_path_style_address(
        self, s3: S3Store, moto_port: int
    ) -> None:
        s3.put(KEY, b"public bytes", content_type="image/jpeg")
        url = s3.presigned_url(KEY, 600)
        assert url is not None
        parts = urlsplit(url)
        assert parts.netloc == f"localhost:{moto_port}"
        assert parts.path == f"/{s3.bucket}/{KEY}"

    def test_s3_url_downloads_the_object(self, s3: S3Store) -> None:
        s3.put(KEY, b"public bytes", content_type="image/jpeg")
        url = s3.presigned_url(KEY, 600)
        assert url is not None
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our URL)
            assert response.read() == b"public bytes"


class TestSecrets:
    def test_repr_names_no_credentials(self, s3: S3Store) -> None:
        shown = f"{s3!r} {s3!s}"
        assert SECRET_ACCESS_KEY not in shown
        assert ACCESS_KEY_ID not in shown
        assert s3.bucket in shown

    def test_the_store_keeps_no_attribute_holding_the_secret(self, s3: S3Store) -> None:
        assert all(SECRET_ACCESS_KEY not in repr(value) for value in vars(s3).values())


class TestBuildStore:
    def test_local_is_the_embedded_default(self, tmp_path: Path) -> None:
        built = build_store(
            backend="local",
            local_root=tmp_path,
            bucket=None,
            endpoint_url=None,
            public_endpoint_url=None,
            region="us-east-1",
            access_key_id=None,
            secret_access_key=None,
        )
        assert isinstance(built, LocalFolderStore)

    def test_s3_reaches_the_configured_endpoint(self, tmp_path: Path, moto_port: int) -> None:
        built = build_store(
            backend="s3",
            local_root=tmp_path,
            bucket=f"hub-test-{uuid.uuid4().hex[:12]}",
            endpoint_url=f"http://127.0.0.1:{moto_port}",
            public_endpoint_url=None,
            region="eu-west-1",
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            create_bucket=True,
        )
        assert isinstance(built, S3Store)
        built.put(KEY, b"eu", content_type="image/png")
        assert built.read(KEY) == b"eu"
        empty_bucket(built)

    def test_s3_without_a_bucket_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="HUB_S3_BUCKET"):
            build_store(
                backend="s3",
                local_root=tmp_path,
                bucket=None,
                endpoint_url=None,
                public_endpoint_url=None,
                region="us-east-1",
                access_key_id=None,
                secret_access_key=None,
            )

    def test_an_unknown_backend_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="'gcs'"):
            build_store(
                backend="gcs",
                local_root=tmp_path,
                bucket=None,
                endpoint_url=None,
                public_endpoint_url=None,
                region="us-east-1",
                access_key_id=None,
                secret_access_key=None,
            )
