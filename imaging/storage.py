"""Object storage for images: a local folder (embedded mode) or S3 (MinIO in compose).

Keys are content-addressed, ``images/{source sha256}/{rendition}-{spec fingerprint}.{ext}``, so
a changed rendition spec makes new keys and an object, once written, never changes. Both
adapters stream: file objects are copied in chunks and reads come back as an iterator of chunks,
so a 200 MB print file never sits in memory whole.

Marketplaces never see these adapters' URLs: they get the API's own signed URLs
(``imaging.signed_urls``), because presigned S3 URLs die with the temporary credentials that
signed them. ``presigned_url`` is here for operators and tools on the public endpoint.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
CHUNK_BYTES = 256 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXTENSION = re.compile(r"[a-z0-9]+")
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str


class ObjectMissing(KeyError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no stored object under {self.key!r}"


class InvalidObjectKey(ValueError):
    """A key that could escape the store's folder or is not one we make."""


class ObjectStoreError(RuntimeError):
    """The store itself is unusable (a missing bucket, refused credentials)."""


class ObjectStore(Protocol):
    def head(self, key: str) -> StoredObject | None: ...

    def put(
        self,
        key: str,
        source: BinaryIO | bytes,
        *,
        content_type: str,
        size: int | None = None,
    ) -> StoredObject: ...

    def put_if_absent(
        self, key: str, source: BinaryIO | bytes, *, content_type: str
    ) -> tuple[StoredObject, bool]: ...

    def open(self, key: str) -> tuple[StoredObject, Iterator[bytes]]: ...

    def read(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def presigned_url(self, key: str, expires_seconds: int) -> str | None: ...


def image_key(source_sha256: str, rendition: str, fingerprint: str, extension: str) -> str:
    """``images/{sha}/{rendition}-{fingerprint}.{ext}``: a new spec fingerprint, a new key."""
    _check(_SHA256, source_sha256, "source sha256 (64 lowercase hex digits)")
    _check(_NAME, rendition, "rendition name")
    _check(_NAME, fingerprint, "spec fingerprint")
    ext = _extension(extension)
    return f"images/{source_sha256}/{rendition}-{fingerprint}.{ext}"


def source_key(source_sha256: str, extension: str) -> str:
    """``images/{sha}/source.{ext}``: the uploaded original beside its renditions."""
    _check(_SHA256, source_sha256, "source sha256 (64 lowercase hex digits)")
    return f"images/{source_sha256}/source.{_extension(extension)}"


def validate_key(key: str) -> str:
    """Relative, ``/``-separated segments of ``[A-Za-z0-9._-]`` that each start with a letter or
    digit: no ``..``, no absolute paths, no empty or hidden segments, no backslashes."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise InvalidObjectKey(
            f"invalid object key {key!r}: use relative '/'-separated segments of letters, "
            "digits, '.', '_' and '-' that each start with a letter or digit"
        )
    return key


def _check(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidObjectKey(f"invalid {what}: {value!r}")


def _extension(extension: str) -> str:
    ext = extension.removeprefix(".").lower() if isinstance(extension, str) else extension
    _check(_EXTENSION, ext, "file extension")
    return ext


def _content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE


def _put_if_absent(
    store: ObjectStore, key: str, source: BinaryIO | bytes, content_type: str
) -> tuple[StoredObject, bool]:
    existing = store.head(key)
    if existing is not None:
        return existing, False
    return store.put(key, source, content_type=content_type), True


def _size_mismatch(key: str, expected: int, actual: int) -> ValueError:
    return ValueError(
        f"object {key!r}: expected {expected} bytes but the source gave {actual}; "
        "nothing was stored"
    )


class Chunks(Iterator[bytes]):
    """The chunks of an open object; ``close()`` releases the file or connection whether or not
    iteration started, and exhausting the chunks closes it too."""

    def __init__(self, source: Any, chunk_bytes: int) -> None:
        self._source = source
        self._chunk_bytes = chunk_bytes

    def __next__(self) -> bytes:
        chunk = bytes(self._source.read(self._chunk_bytes))
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._source.close()


class LocalFolderStore:
    """Objects as files under ``root``; the content type in a hidden sidecar beside each.

    Writes go to a hidden temporary file in the target folder and are moved into place with
    ``os.replace``, so a reader sees the old object or the new one, never a part. Keys cannot name
    hidden files (see ``validate_key``), so temporary files and sidecars never collide with keys.
    """

    def __init__(self, root: Path, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.root = Path(root)
        self._chunk_bytes = chunk_bytes

    def __repr__(self) -> str:
        return f"LocalFolderStore(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(f".{path.name}.content-type")

    def _stored(self, key: str, path: Path, size: int) -> StoredObject:
        try:
            content_type = self._sidecar(path).read_text().strip() or _content_type_of(key)
        except FileNotFoundError:
            content_type = _content_type_of(key)
        return StoredObject(key=key, size=size, content_type=content_type)

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return self._stored(key, path, size)

    def put(
        self,
        key: str,
        source: BinaryIO | bytes,
        *,
        content_type: str,
        size: int | None = None,
    ) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(handle: BinaryIO) -> int:
            written = self._copy(source, handle)
            if size is not None and written != size:
                raise _size_mismatch(key, size, written)
            return written

        sidecar = self._sidecar(path)
        self._write_atomically(sidecar, lambda handle: handle.write(content_type.encode()))
        try:
            written = self._write_atomically(path, write)
        except BaseException:
            if not path.exists():
                sidecar.unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size=written, content_type=content_type)

    def _copy(self, source: BinaryIO | bytes, handle: BinaryIO) -> int:
        if isinstance(source, bytes | bytearray | memoryview):
            handle.write(source)
            return len(source)
        written = 0
        while chunk := source.read(self._chunk_bytes):
            handle.write(chunk)
            written += len(chunk)
        return written

    def _write_atomically(self, path: Path, write: Callable[[BinaryIO], int]) -> int:
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "xb") as handle:
                written = write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return written

    def put_if_absent(
        self, key: str, source: BinaryIO | bytes, *, content_type: str
    ) -> tuple[StoredObject, bool]:
        return _put_if_absent(self, key, source, content_type)

    def open(self, key: str) -> tuple[StoredObject, Iterator[bytes]]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed by the iterator)
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        try:
            stored = self._stored(key, path, os.fstat(handle.fileno()).st_size)
        except BaseException:
            handle.close()
            raise
        return stored, Chunks(handle, self._chunk_bytes)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._sidecar(path).unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        validate_key(key)
        return None


class _CountingReader:
    """A non-seekable reader that counts what passed through (for sources of unknown size)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self.count += len(chunk)
        return chunk


def _remaining_length(source: BinaryIO) -> int | None:
    try:
        if not source.seekable():
            return None
        start = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(start)
    except (AttributeError, OSError, ValueError):
        return None
    return end - start


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Objects in one S3 bucket through boto3, with path-style addressing (MinIO, moto).

    ``endpoint_url`` is the address the hub talks to (``http://minio:9000`` in compose);
    ``public_endpoint_url`` is put in presigned URLs when clients reach the store elsewhere
    (``http://localhost:9000``). Credentials unset fall back to boto3's chain (environment,
    instance role). The secret key is handed to boto3 and kept nowhere else.
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = False,
        chunk_bytes: int = CHUNK_BYTES,
        multipart_threshold: int = 8 * MIB,
        multipart_chunksize: int = 8 * MIB,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ValueError("S3Store needs a bucket name: set HUB_S3_BUCKET")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url or endpoint_url
        self.region = region
        self._chunk_bytes = chunk_bytes
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=4,  # bounds an upload's memory at 4 parts
            io_chunksize=chunk_bytes,
        )
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout_seconds,
            read_timeout=read_timeout_seconds,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._public_client: Any = (
            session.client("s3", endpoint_url=public_endpoint_url, config=config)
            if public_endpoint_url and public_endpoint_url != endpoint_url
            else self._client
        )
        if create_bucket:
            self.ensure_bucket()

    def __repr__(self) -> str:
        return (
            f"S3Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, "
            f"public_endpoint_url={self.public_endpoint_url!r}, region={self.region!r})"
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client (tests hook its events to see the requests sent)."""
        return self._client

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (MinIO in compose starts empty)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _error_code(error) not in _MISSING_CODES | {"NoSuchBucket"}:
                raise self._store_error(error, "check the bucket") from error
        arguments: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**arguments)
        except ClientError as error:
            if _error_code(error) == "BucketAlreadyOwnedByYou":  # another process was first
                return
            raise self._store_error(error, "create the bucket") from error
        log.info("created object storage bucket", extra={"bucket": self.bucket})

    def _store_error(self, error: ClientError, doing: str) -> ObjectStoreError:
        code = _error_code(error)
        hint = {
            "NoSuchBucket": "create it, or start the hub with HUB_S3_CREATE_BUCKET=true",
            "AccessDenied": "check HUB_S3_ACCESS_KEY_ID / HUB_S3_SECRET_ACCESS_KEY",
            "InvalidAccessKeyId": "check HUB_S3_ACCESS_KEY_ID",
            "SignatureDoesNotMatch": "check HUB_S3_SECRET_ACCESS_KEY",
        }.get(code, "check the S3 settings")
        return ObjectStoreError(
            f"object storage: {doing} in bucket {self.bucket!r} at "
            f"{self.endpoint_url or 'AWS'} failed: {code or error}; {hint}"
        )

    def head(self, key: str) -> StoredObject | None:
        validate_key(key)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                return None
            raise self._store_error(error, f"HEAD {key!r}") from error
        return StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            content_type=str(response.get("ContentType") or _content_type_of(key)),
        )

    def put(
        self,
        key: str,
        source: BinaryIO | bytes,
        *,
        content_type: str,
        size: int | None = None,
    ) -> StoredObject:
        validate_key(key)
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                written = self._put_bytes(key, bytes(source), content_type, size)
            else:
                written = self._put_stream(key, source, content_type, size)
        except ClientError as error:
            raise self._store_error(error, f"PUT {key!r}") from error
        return StoredObject(key=key, size=written, content_type=content_type)

    def _put_bytes(self, key: str, data: bytes, content_type: str, size: int | None) -> int:
        if size is not None and size != len(data):
            raise _size_mismatch(key, size, len(data))
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return len(data)

    def _put_stream(self, key: str, source: BinaryIO, content_type: str, size: int | None) -> int:
        extra = {"ContentType": content_type}
        known = _remaining_length(source)
        if known is not None:
            if size is not None and size != known:
                raise _size_mismatch(key, size, known)
            self._client.upload_fileobj(
                source, self.bucket, key, ExtraArgs=extra, Config=self._transfer
            )
            return known
        counting = _CountingReader(source)
        self._client.upload_fileobj(
            counting, self.bucket, key, ExtraArgs=extra, Config=self._transfer
        )
        if size is not None and counting.count != size:
            self.delete(key)
            raise _size_mismatch(key, size, counting.count)
        return counting.count

    def put_if_absent(
        self, key: str, source: BinaryIO | bytes, *, content_type: str
    ) -> tuple[StoredObject, bool]:
        return _put_if_absent(self, key, source, content_type)

    def _get(self, key: str) -> Any:
        validate_key(key)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                raise ObjectMissing(key) from None
            raise self._store_error(error, f"GET {key!r}") from error

    def open(self, key: str) -> tuple[StoredObject, Iterator[bytes]]:
        response = self._get(key)
        stored = StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            content_type=str(response.get("ContentType") or _content_type_of(key)),
        )
        return stored, Chunks(response["Body"], self._chunk_bytes)

    def read(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            raise self._store_error(error, f"DELETE {key!r}") from error

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A GET URL on the public endpoint. It lives only as long as the credentials that
        signed it, so marketplaces get ``imaging.signed_urls`` URLs instead."""
        validate_key(key)
        return str(
            self._public_client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_seconds,
            )
        )


def build_store(
    *,
    backend: str,
    local_root: Path,
    bucket: str | None,
    endpoint_url: str | None,
    public_endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    create_bucket: bool = False,
) -> ObjectStore:
    """The store the settings name: ``local`` (embedded default) or ``s3``."""
    if backend == "local":
        return LocalFolderStore(local_root)
    if backend == "s3":
        if not bucket:
            raise ValueError("HUB_STORAGE_BACKEND=s3 needs HUB_S3_BUCKET")
        return S3Store(
            bucket=bucket,
            endpoint_url=endpoint_url,
            public_endpoint_url=public_endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            create_bucket=create_bucket,
        )
    raise ValueError(f"unknown object storage backend {backend!r}: use 'local' or 's3'")


__all__ = [
    "CHUNK_BYTES",
    "Chunks",
    "InvalidObjectKey",
    "LocalFolderStore",
    "ObjectMissing",
    "ObjectStore",
    "ObjectStoreError",
    "S3Store",
    "StoredObject",
    "build_store",
    "image_key",
    "source_key",
    "validate_key",
]
