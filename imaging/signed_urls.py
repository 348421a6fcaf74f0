"""The API's own signed, expiring URLs for stored images, in every storage mode.

Marketplaces fetch image URLs without our API key, sometimes long after the push (Shopify may
take a day), so the URL itself is the credential: ``{base}/media/{key}?expires=..&signature=..``
where the signature is an HMAC-SHA256 of ``/media/{key}`` and the expiry. The API streams the
object from storage (``hub/api/media.py``). Presigned S3 URLs are not used for this: they die
with the temporary credentials that signed them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

MIN_TTL_SECONDS = 24 * 3600
MEDIA_PREFIX = "/media/"

_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def media_path(key: str) -> str:
    """The path the signature covers (before URL quoting), relative to the API's root."""
    return f"{MEDIA_PREFIX}{key}"


def _signature(key: str, expires: int, secret: bytes) -> str:
    message = f"{media_path(key)}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(
    key: str, *, secret: bytes, base_url: str, ttl_seconds: int, now: float | None = None
) -> str:
    """A URL for ``key`` valid for ``ttl_seconds`` (at least ``MIN_TTL_SECONDS``)."""
    if ttl_seconds < MIN_TTL_SECONDS:
        raise ValueError(
            f"signed media URL lifetime {ttl_seconds} s is under {MIN_TTL_SECONDS} s: "
            "marketplaces may fetch a day after the push; raise HUB_MEDIA_URL_TTL_SECONDS"
        )
    if not secret:
        raise ValueError("signed media URLs need a non-empty secret")
    if not key:
        raise ValueError("signed media URLs need an object key")
    expires = int(time.time() if now is None else now) + ttl_seconds
    query = urlencode({"expires": expires, "signature": _signature(key, expires, secret)})
    return f"{base_url.rstrip('/')}{MEDIA_PREFIX}{quote(key, safe='/')}?{query}"


def verify(
    key: str, expires: str, signature: str, *, secret: bytes, now: float | None = None
) -> bool:
    """True when ``signature`` signs ``key`` and ``expires`` and the expiry is still ahead.

    Malformed input is False, never an exception; the comparison is constant-time.
    """
    if not secret or not key:
        return False
    if not isinstance(expires, str) or _EXPIRES.fullmatch(expires) is None:
        return False
    if not isinstance(signature, str) or _SIGNATURE.fullmatch(signature) is None:
        return False
    expires_at = int(expires)
    expected = _signature(key, expires_at, secret)
    if not hmac.compare_digest(expected, signature.lower()):
        return False
    return (time.time() if now is None else now) < expires_at


@dataclass(frozen=True)
class MediaUrlSigner:
    """``sign`` with the deployment's secret, public base URL and lifetime bound once."""

    secret: bytes = field(repr=False)
    base_url: str
    ttl_seconds: int

    def __post_init__(self) -> None:
        if self.ttl_seconds < MIN_TTL_SECONDS:
            raise ValueError(
                f"signed media URL lifetime {self.ttl_seconds} s is under {MIN_TTL_SECONDS} s: "
                "raise HUB_MEDIA_URL_TTL_SECONDS"
            )
        if not self.secret:
            raise ValueError("signed media URLs need a non-empty secret")

    def url(self, key: str, *, now: float | None = None) -> str:
        return sign(
            key, secret=self.secret, base_url=self.base_url, ttl_seconds=self.ttl_seconds, now=now
        )

    def verify(self, key: str, expires: str, signature: str, *, now: float | None = None) -> bool:
        return verify(key, expires, signature, secret=self.secret, now=now)
