"""Shop credentials encrypted with MultiFernet; the newest key encrypts, all keys decrypt."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.domain.errors import DomainError

KEY_FILE_NAME = "secret.key"


class CredentialKeyError(DomainError):
    code = "credential_keys"


class FernetCredentialCipher:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise CredentialKeyError("no credential encryption key: set HUB_SECRET_KEYS")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def __repr__(self) -> str:
        return "FernetCredentialCipher(<keys hidden>)"

    def encrypt(self, document: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(dict(document))).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise CredentialKeyError(
                "stored shop credentials cannot be decrypted with HUB_SECRET_KEYS; "
                "keep the old key in the list until credentials are re-encrypted"
            ) from exc
        if not isinstance(value, dict):
            raise CredentialKeyError("stored shop credentials are not a JSON object")
        return value


def parse_keys(raw: str) -> list[bytes]:
    return [part.strip().encode() for part in raw.split(",") if part.strip()]


def embedded_key(data_dir: Path) -> bytes:
    """The embedded mode's key, created once with owner-only permissions."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    return path.read_bytes().strip()
