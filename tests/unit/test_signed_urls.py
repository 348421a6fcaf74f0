"""Signed media URLs: what marketplaces fetch our images with, without an API key."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from imaging.signed_urls import MIN_TTL_SECONDS, MediaUrlSigner, sign, verify

SECRET = b"media-url-secret"
BASE = "https://hub.example"
KEY = "images/" + "ab" * 32 + "/shopify-f00d.jpg"
NOW = 1_800_000_000.0
DAY = 24 * 3600


def signed(key: str = KEY, *, ttl: int = DAY, now: float = NOW) -> tuple[str, str, str]:
    """(key as the route sees it, expires, signature) from a freshly signed URL."""
    parts = urlsplit(sign(key, secret=SECRET, base_url=BASE, ttl_seconds=ttl, now=now))
    query = parse_qs(parts.query)
    return unquote(parts.path.removeprefix("/media/")), query["expires"][0], query["signature"][0]


class TestSign:
    def test_url_is_the_media_route_on_the_public_base_url(self) -> None:
        url = sign(KEY, secret=SECRET, base_url=BASE + "/", ttl_seconds=DAY, now=NOW)
        expires = int(NOW) + DAY
        digest = hmac.new(SECRET, f"/media/{KEY}\n{expires}".encode(), hashlib.sha256)
        assert url == f"{BASE}/media/{KEY}?expires={expires}&signature={digest.hexdigest()}"

    def test_a_lifetime_under_a_day_is_refused(self) -> None:
        with pytest.raises(ValueError, match="HUB_MEDIA_URL_TTL_SECONDS"):
            sign(KEY, secret=SECRET, base_url=BASE, ttl_seconds=MIN_TTL_SECONDS - 1, now=NOW)

    def test_an_empty_secret_is_refused(self) -> None:
        with pytest.raises(ValueError, match="secret"):
            sign(KEY, secret=b"", base_url=BASE, ttl_seconds=DAY, now=NOW)

    def test_unusual_characters_in_a_key_are_quoted_and_still_verify(self) -> None:
        key, expires, signature = signed("images/a b?c#d.png")
        assert key == "images/a b?c#d.png"
        assert verify(key, expires, signature, secret=SECRET, now=NOW)


class TestVerify:
    def test_round_trip(self) -> None:
        key, expires, signature = signed()
        assert verify(key, expires, signature, secret=SECRET, now=NOW)

    def test_valid_until_just_before_expiry(self) -> None:
        key, expires, signature = signed()
        assert verify(key, expires, signature, secret=SECRET, now=NOW + DAY - 1)

    def test_expired_fails(self) -> None:
        key, expires, signature = signed()
        assert not verify(key, expires, signature, secret=SECRET, now=NOW + DAY)

    def test_another_key_fails(self) -> None:
        _key, expires, signature = signed()
        assert not verify(KEY.replace("shopify", "etsy"), expires, signature, secret=SECRET)

    def test_a_moved_expiry_fails(self) -> None:
        key, expires, signature = signed()
        assert not verify(key, str(int(expires) + 1), signature, secret=SECRET, now=NOW)

    def test_a_changed_signature_fails(self) -> None:
        key, expires, signature = signed()
        flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
        assert not verify(key, expires, flipped, secret=SECRET, now=NOW)

    def test_another_secret_fails(self) -> None:
        key, expires, signature = signed()
        assert not verify(key, expires, signature, secret=b"other", now=NOW)

    def test_an_upper_case_signature_is_the_same_signature(self) -> None:
        key, expires, signature = signed()
        assert verify(key, expires, signature.upper(), secret=SECRET, now=NOW)

    @pytest.mark.parametrize(
        "expires", ["", "abc", "-1", "1e12", " 1", "\uff11\uff12\uff13", "9" * 13]
    )
    def test_malformed_expiry_is_false(self, expires: str) -> None:
        _key, _expires, signature = signed()
        assert not verify(KEY, expires, signature, secret=SECRET, now=NOW)

    @pytest.mark.parametrize("signature", ["", "zz" * 32, "ab" * 31, "ab" * 33, "é" * 64])
    def test_malformed_signature_is_false(self, signature: str) -> None:
        _key, expires, _signature = signed()
        assert not verify(KEY, expires, signature, secret=SECRET, now=NOW)

    def test_an_empty_secret_never_verifies(self) -> None:
        expires = str(int(NOW) + DAY)
        digest = hmac.new(b"", f"/media/{KEY}\n{expires}".encode(), hashlib.sha256).hexdigest()
        assert not verify(KEY, expires, digest, secret=b"", now=NOW)


class TestMediaUrlSigner:
    def test_signs_with_its_settings(self) -> None:
        signer = MediaUrlSigner(secret=SECRET, base_url=BASE, ttl_seconds=7 * DAY)
        assert signer.url(KEY, now=NOW) == sign(
            KEY, secret=SECRET, base_url=BASE, ttl_seconds=7 * DAY, now=NOW
        )

    def test_verifies_what_it_signed(self) -> None:
        signer = MediaUrlSigner(secret=SECRET, base_url=BASE, ttl_seconds=DAY)
        query = parse_qs(urlsplit(signer.url(KEY, now=NOW)).query)
        assert signer.verify(KEY, query["expires"][0], query["signature"][0], now=NOW)

    def test_a_lifetime_under_a_day_is_refused(self) -> None:
        with pytest.raises(ValueError, match="HUB_MEDIA_URL_TTL_SECONDS"):
            MediaUrlSigner(secret=SECRET, base_url=BASE, ttl_seconds=3600)

    def test_repr_hides_the_secret(self) -> None:
        signer = MediaUrlSigner(secret=SECRET, base_url=BASE, ttl_seconds=DAY)
        assert SECRET.decode() not in repr(signer)
