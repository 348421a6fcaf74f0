"""Shop credentials encrypted with MultiFernet; the newest key encrypts, all keys decrypt.

Every key and every secret field of a document this cipher handles is registered with the log
redaction: wherever such a value turns up in a log line later, it is masked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.domain.errors import DomainError
from hub.infrastructure.logs import register_credentials, register_secrets

KEY_FILE_NAME = "secret.key"


class CredentialKeyError(DomainError):
    code = "credential_keys"


class FernetCredentialCipher:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise CredentialKeyError("no credential encryption key: set HUB_SECRET_KEYS")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise CredentialKeyError(
                    f"credential key {position} of {len(keys)} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes); generate one with `hub keys generate`"
                ) from exc
        register_secrets(key.decode(errors="replace") for key in keys)
        self._newest = fernets[0]
        self._key_count = len(fernets)
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return "FernetCredentialCipher(<keys hidden>)"

    @property
    def key_count(self) -> int:
        return self._key_count

    def encrypt(self, document: Mapping[str, Any]) -> str:
        register_credentials(document)
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
        register_credentials(value)
        return value

    def is_current(self, token: str) -> bool:
        """Encrypted under the newest key. Fernet tokens carry no key id: the newest key alone
        must decrypt it."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same document encrypted under the newest key (a token under any key in)."""
        try:
            rotated = self._fernet.rotate(token.encode())
        except InvalidToken as exc:
            raise CredentialKeyError(
                "a stored token cannot be decrypted with any key of HUB_SECRET_KEYS"
            ) from exc
        register_credentials(self.decrypt(rotated.decode()))
        return rotated.decode()


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
