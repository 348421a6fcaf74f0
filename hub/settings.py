"""Every knob of the hub, read once from ``HUB_*`` environment variables.

The defaults are the embedded mode (SQLite file, in-process cache, local folder), so a fresh
machine runs the hub with no configuration at all; production sets the service URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=None, extra="ignore")

    # Storage and services. Unset URLs select the embedded adapters.
    data_dir: Path = Field(Path("var"), description="Folder for the SQLite file and key file.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset = SQLite in data_dir."
    )
    db_schema: str | None = Field(
        None, description="PostgreSQL schema to use (tests isolate runs)."
    )
    db_pool_size: int = Field(20, description="Connections kept per process (PostgreSQL).")
    db_max_overflow: int = Field(20, description="Extra connections under bursts (PostgreSQL).")
    db_busy_timeout_ms: int = Field(5000, description="SQLite busy timeout for waiting writers.")
    db_connect_timeout_seconds: int = Field(
        5, description="Longest wait for a new PostgreSQL connection before it counts as an outage."
    )
    db_pool_timeout_seconds: float = Field(
        10.0, description="Longest wait for a free pooled connection before the request fails."
    )
    cache_url: str | None = Field(None, description="redis:// URL; unset = in-process cache.")
    cache_enabled: bool = Field(True, description="False bypasses the read cache entirely.")
    cache_key_prefix: str = Field("hub:", description="Prefix of every cache key.")
    cache_ttl_seconds: int = Field(300, description="Lifetime of a cached read.")
    cache_timeout_seconds: float = Field(
        1.0, description="Longest wait for Redis before a read falls back to the database."
    )
    cache_tombstone_ttl_seconds: int = Field(
        900, description="Lifetime of a tombstone; longer than any read can take."
    )
    broker_url: str | None = Field(None, description="amqp:// URL; unset = in-process broker.")

    # Sync engine.
    broker_queue_prefix: str = Field("hub.", description="Prefix of every queue name.")
    worker_threads: int = Field(8, description="Actor threads per worker process.")
    push_debounce_ms: int = Field(
        300,
        ge=0,
        description="How long a push waits after the first change, so a burst of changes "
        "makes one push of the latest values.",
    )
    stuck_operation_minutes: int = Field(
        10, ge=1, description="A queued operation untouched this long is re-sent by the sweep."
    )
    catalog_pull_interval_hours: float = Field(
        6, gt=0, description="How often each active shop's listings are re-bound by SKU."
    )
    worker_poll_ms: int = Field(
        100,
        ge=10,
        description="How long a worker's consumers block before checking delayed messages "
        "again: a delayed message (a debounced push, a wait) runs at most this late.",
    )
    worker_shop_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a worker reuses a shop it loaded (0: reload every time); a pause "
        "or new credentials take effect within this time.",
    )
    outbox_poll_ms: int = Field(50, description="Relay poll when LISTEN/NOTIFY is not available.")
    relay_threads: int = Field(
        4, description="Outbox publisher threads (each waits for the broker's confirms)."
    )
    pull_interval_seconds: int = Field(300, description="Reconciliation pull per shop.")
    pull_overlap_minutes: int = Field(
        10, description="Each pull re-reads this far before its cursor."
    )
    pull_backfill_days: int = Field(30, description="How far back a shop's first pull reaches.")
    authorization_ttl_minutes: int = Field(
        10, ge=1, description="How long a started shop authorization (its state) stays valid."
    )
    webhook_check_interval_minutes: float = Field(
        60,
        gt=0,
        description="How often each active shop's webhook subscriptions are checked and repaired.",
    )
    webhook_silence_hours: float = Field(
        24,
        gt=0,
        description="Etsy (portal-managed webhooks): no verified delivery for this long flags "
        "the shop's subscription as silent.",
    )
    woocommerce_requests_per_second: int = Field(
        25, description="Requests per second sent to one WooCommerce site."
    )
    etsy_requests_per_second: int = Field(10, description="The Etsy app's per-second budget.")
    etsy_requests_per_day: int = Field(10_000, description="The Etsy app's daily request budget.")
    etsy_poll_share: float = Field(
        0.3, description="Share of Etsy's daily budget for order polling."
    )
    stale_event_minutes: int = Field(
        10, description="Unhandled events older than this are re-sent."
    )
    max_broker_delay_seconds: int = Field(
        300, description="Longest wait carried by a delayed message; longer waits park in the DB."
    )
    outage_retry_seconds: float = Field(
        2.0, description="Wait before work that met a database, cache or broker outage runs again."
    )
    readiness_timeout_seconds: float = Field(
        2.0, description="Longest wait of each /readyz dependency check."
    )

    # HTTP.
    host: str = Field("127.0.0.1", description="Address `hub serve` binds.")
    port: int = Field(8000, description="Port `hub serve` binds.")
    public_base_url: str = Field("http://127.0.0.1:8000", description="URL marketplaces reach.")
    storage_backend: Literal["local", "s3"] = Field(
        "local", description="Where images live: a local folder (embedded) or S3 (or MinIO)."
    )
    storage_dir: Path | None = Field(
        None, description="Local object folder; unset = data_dir/objects."
    )
    s3_bucket: str | None = Field(None, description="S3 bucket of the images.")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint the hub talks to (MinIO: http://minio:9000)."
    )
    s3_public_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint put in presigned URLs, when it differs from the internal one.",
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    s3_create_bucket: bool = Field(
        False,
        description="Create HUB_S3_BUCKET at start when it is missing (MinIO in compose starts "
        "empty).",
    )
    media_url_secret: SecretStr | None = Field(
        None,
        description="HMAC key of the signed image URLs marketplaces fetch; unset = derived from "
        "the credential key.",
    )
    media_url_ttl_seconds: int = Field(
        7 * 24 * 3600,
        ge=24 * 3600,
        description="Validity of a signed image URL (Shopify may fetch a day after the push).",
    )
    max_image_pixels: int = Field(
        150_000_000, gt=0, description="Largest image accepted, in pixels (12,000 x 12,000 passes)."
    )
    image_render_concurrency: int = Field(
        1, ge=1, description="Renders at once per process (a 12,000 px RGBA decode is ~576 MB)."
    )
    image_specs: str | None = Field(
        None,
        description='JSON merged over the rendition table, e.g. {"etsy": {"long_side": 1800}}.',
    )
    max_body_bytes: int = Field(5 * MIB, description="Largest JSON or webhook body accepted.")
    webhook_failure_limit: int = Field(
        20,
        ge=1,
        description="Webhook requests from one source that may fail verification (bad "
        "signature, unknown shop) per window; further failures get 429 with Retry-After, "
        "cheaply. Verified deliveries are never limited.",
    )
    webhook_failure_window_seconds: float = Field(
        10.0, gt=0, description="The sliding window of HUB_WEBHOOK_FAILURE_LIMIT, in seconds."
    )
    webhook_failure_delay_seconds: float = Field(
        1.0,
        ge=0,
        description="How long a 429 to a source over its failure budget is held back (at most "
        "256 at once per process): slows a flood on few connections at no CPU cost; 0 = at once.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For names the client a webhook is counted against; empty = the peer.",
    )
    max_upload_bytes: int = Field(200 * MIB, description="Largest image upload accepted.")
    api_key_cache_seconds: float = Field(30.0, description="How long a checked API key is trusted.")
    gil_switch_interval_ms: float = Field(
        1.0,
        description="How often a busy thread yields the GIL (Python's default is 5 ms): short, "
        "so cache hits on the event loop are not held behind database work in worker threads.",
    )
    log_level: str = Field("INFO", description="Root log level.")

    # Marketplaces.
    shopify_api_version: str = Field(
        "2026-04", description="Shopify Admin API version (>= 2026-04)."
    )
    rate_limit_max_inline_wait: float = Field(
        1.0, description="Longest a worker thread waits for a rate limit before re-queueing."
    )
    http_timeout_seconds: float = Field(
        10.0, description="Marketplace HTTP timeout; kept well below worker time limits."
    )
    allow_private_urls: bool = Field(
        False,
        description="Let outbound requests and shop URLs reach loopback, private and other "
        "non-public addresses, and use plain http: for sandboxes only (tests, the demo).",
    )
    max_response_bytes: int = Field(
        20 * MIB,
        gt=0,
        description="Longest response body read from a marketplace (or an image we fetch); "
        "a longer one is cut off while it streams in.",
    )

    # Privacy.
    buyer_data_retention_days: int = Field(
        365,
        ge=0,
        description="Buyer data (names, emails, addresses on orders; raw webhook bodies; "
        "emails in error texts) is redacted once this many days old; 0 keeps it until a "
        "redaction is asked for.",
    )
    privacy_export_retention_days: int = Field(
        30,
        ge=1,
        description="How long the export answering a `customers/data_request` stays in its "
        "job's result before it is redacted too.",
    )

    # Operations.
    metrics_window_minutes: int = Field(
        5, ge=1, le=1440, description="Window of the webhook -> order lag quantiles on /metrics."
    )
    retention_events_days: int = Field(
        30,
        ge=0,
        description="Handled and rejected webhook events are deleted once this many days old "
        "(0 keeps them); keep it past the marketplaces' redelivery windows, since a duplicate "
        "is recognised by its stored event.",
    )
    retention_attempts_days: int = Field(
        30,
        ge=0,
        description="Attempts (one per remote call) of finished jobs are deleted once this many "
        "days old (0 keeps them).",
    )
    retention_outbox_days: int = Field(
        7,
        ge=0,
        description="Published outbox rows are deleted once this many days old (0 keeps them).",
    )

    # Secrets.
    admin_api_key: SecretStr | None = Field(None, description="Bearer key of the operator.")
    secret_keys: SecretStr | None = Field(
        None, description="Fernet keys, comma-separated, newest first (credential encryption)."
    )
    shopify_client_id: str | None = None
    shopify_client_secret: SecretStr | None = None
    shopify_client_secret_previous: SecretStr | None = None
    etsy_keystring: str | None = None
    etsy_shared_secret: SecretStr | None = None
    etsy_shared_secret_previous: SecretStr | None = None
    etsy_webhook_secret: SecretStr | None = None
    etsy_webhook_secret_previous: SecretStr | None = None

    @field_validator("max_body_bytes", "max_upload_bytes", "cache_ttl_seconds")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @model_validator(mode="after")
    def _shared_backends_for_many_processes(self) -> Settings:
        if self.broker_url and not self.cache_url:
            raise ValueError(
                "HUB_BROKER_URL runs workers in many processes; set HUB_CACHE_URL (Redis) too, "
                "so caches and rate limits are shared between them"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "objects"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
