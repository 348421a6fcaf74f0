"""Settings defaults, credential encryption and keeping secrets out of reprs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.application.sellers import IssuedKey
from hub.bootstrap import build_cipher
from hub.domain.shops import Marketplace, Shop
from hub.infrastructure.crypto import CredentialKeyError, FernetCredentialCipher
from hub.settings import Settings


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.is_sqlite
    assert settings.cache_url is None
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.max_upload_bytes == 200 * 1024 * 1024


def test_secrets_never_appear_in_settings_repr() -> None:
    settings = Settings(admin_api_key="admin-secret", secret_keys="k1", etsy_shared_secret="etsy-s")
    for text in (repr(settings), str(settings)):
        assert "admin-secret" not in text
        assert "etsy-s" not in text


def test_embedded_key_file_is_created_owner_only(tmp_path: Path) -> None:
    cipher = build_cipher(Settings(data_dir=tmp_path))
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert cipher.decrypt(cipher.encrypt({"token": "t"})) == {"token": "t"}
    assert build_cipher(Settings(data_dir=tmp_path)).decrypt(cipher.encrypt({"a": 1})) == {"a": 1}


def test_postgresql_mode_refuses_to_start_without_keys() -> None:
    with pytest.raises(CredentialKeyError, match="HUB_SECRET_KEYS"):
        build_cipher(Settings(database_url="postgresql+psycopg://u@h/db"))


def test_key_rotation_old_tokens_still_decrypt() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = FernetCredentialCipher([old]).encrypt({"refresh_token": "r"})
    assert FernetCredentialCipher([new, old]).decrypt(token) == {"refresh_token": "r"}
    with pytest.raises(CredentialKeyError, match="cannot be decrypted"):
        FernetCredentialCipher([new]).decrypt(token)


def test_credentials_and_keys_stay_out_of_reprs() -> None:
    shop = Shop(1, 1, Marketplace.ETSY, "1", "s", credentials={"access_token": "tok-123"})
    assert "tok-123" not in repr(shop)
    issued = IssuedKey(seller_id=1, key="hub_abcdefghijklmnopqrstuvwxyz")
    assert "qrstuvwxyz" not in repr(issued)
