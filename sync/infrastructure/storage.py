"""The object store the settings describe (the local folder embedded, S3 or MinIO otherwise)."""

from __future__ import annotations

from hub.settings import Settings
from imaging.storage import ObjectStore, build_store


def build_object_store(settings: Settings) -> ObjectStore:
    secret = settings.s3_secret_access_key
    return build_store(
        backend=settings.storage_backend,
        local_root=settings.resolved_storage_dir,
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        create_bucket=settings.s3_create_bucket,
    )
