"""`hub secrets rotate`: every encrypted value re-encrypted under the newest key, on SQLite and
PostgreSQL; afterwards the new key alone reads everything, and a token refresh running meanwhile
is never lost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from cli.main import app
from connectors.contract import ShopContext
from hub.application import shops
from hub.bootstrap import Container, bootstrap
from hub.domain.onboarding import ConnectOptions, PendingAuthorization
from hub.domain.shops import Marketplace
from hub.infrastructure.clock import utcnow
from hub.infrastructure.crypto import CredentialKeyError, FernetCredentialCipher
from hub.infrastructure.key_rotation import check_all, rotate_all
from hub.infrastructure.tables import ShopAuthorizationRow, ShopRow, table_of
from hub.settings import Settings
from sync.infrastructure.credentials import SqlCredentialStore
from tests.conftest import Backend
from tests.factories import ADMIN, World

SHOPS = table_of(ShopRow)
AUTHORIZATIONS = table_of(ShopAuthorizationRow)
ETSY_TOKENS = {"access_token": "777.etsy-access-old", "refresh_token": "777.etsy-refresh-old"}
WOO_KEYS = {"consumer_key": "ck_" + "1" * 40, "consumer_secret": "cs_" + "2" * 40}


def keyed(settings: Settings, *keys: bytes) -> Settings:
    joined = ",".join(key.decode() for key in keys)
    return settings.model_copy(update={"secret_keys": SecretStr(joined)})


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    """(old, new)."""
    return Fernet.generate_key(), Fernet.generate_key()


@pytest.fixture
def old_hub(backend: Backend, keys: tuple[bytes, bytes]) -> Iterator[Container]:
    """The hub before the rotation: everything written under the old key."""
    container = bootstrap(keyed(backend.settings, keys[0]))
    yield container
    container.close()


def hub_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, *keys: bytes) -> None:
    """The CLI reaches the backend's database through HUB_* variables."""
    values = {
        "HUB_DATA_DIR": str(settings.data_dir),
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_DB_SCHEMA": settings.db_schema,
        "HUB_CACHE_URL": settings.cache_url,
        "HUB_CACHE_KEY_PREFIX": settings.cache_key_prefix,
        "HUB_SECRET_KEYS": ",".join(key.decode() for key in keys),
    }
    monkeypatch.delenv("HUB_BROKER_URL", raising=False)
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def rotate(*args: str) -> Result:
    return CliRunner().invoke(app, ["secrets", "rotate", *args])


def columns(result: Result) -> dict[str, dict[str, Any]]:
    return {column["column"]: column for column in json.loads(result.stdout)["columns"]}


def populate(container: Container) -> dict[str, Any]:
    """A Shopify shop (World), an Etsy and a WooCommerce shop, a shop without credentials and an
    Etsy authorization in flight with its PKCE verifier."""
    world = World(container, bind=False)
    with container.uow() as uow:
        made = {}
        for marketplace, credentials in (
            (Marketplace.ETSY, ETSY_TOKENS),
            (Marketplace.WOOCOMMERCE, WOO_KEYS),
            (Marketplace.SHOPIFY, None),
        ):
            shop = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=world.seller_id,
                    marketplace=marketplace,
                    external_id=f"{marketplace.value}-shop",
                    name=marketplace.value,
                    credentials=credentials,
                ),
                ADMIN,
            )
            made[marketplace.value if credentials else "empty"] = shop.id
        now = utcnow()
        pending = uow.authorizations.add(
            PendingAuthorization(
                id=None,
                seller_id=world.seller_id,
                marketplace=Marketplace.ETSY,
                shop_hint=None,
                api_base_url=None,
                options=ConnectOptions(),
                created_at=now,
                expires_at=now + timedelta(minutes=10),
                code_verifier="pkce-verifier-0123456789",
            ),
            state="state-of-the-rotation-test",
        )
        uow.commit()
    return {"shopify": world.shop_id, **made, "authorization": pending.id}


def read_everything(container: Container, ids: Mapping[str, Any]) -> dict[str, Any]:
    with container.uow() as uow:
        found: dict[str, Any] = {
            name: (shop.credentials if (shop := uow.shops.get(ids[name])) else None)
            for name in ("shopify", "etsy", "woocommerce", "empty")
        }
        pending = uow.authorizations.claim("state-of-the-rotation-test")
    found["verifier"] = pending.code_verifier if pending else None
    return found


EXPECTED = {
    "shopify": {"access_token": "shpat_secret"},
    "etsy": ETSY_TOKENS,
    "woocommerce": WOO_KEYS,
    "empty": {},
    "verifier": "pkce-verifier-0123456789",
}


def test_rotation_leaves_everything_readable_with_the_new_key_alone(
    backend: Backend,
    old_hub: Container,
    keys: tuple[bytes, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = keys
    ids = populate(old_hub)
    hub_env(monkeypatch, backend.settings, new, old)

    checked = rotate("--check", "--json")
    assert checked.exit_code == 1, checked.output
    assert "4 encrypted values still under an older key" in checked.stderr
    before = columns(checked)
    assert before["shops.credentials"]["stale"] == 3  # the shop without credentials has none
    assert before["shop_authorizations.secrets"]["stale"] == 1

    rotated = rotate()
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 4 encrypted values under the newest key" in rotated.stdout
    for secret in ("shpat_secret", "etsy-access-old", WOO_KEYS["consumer_secret"], new.decode()):
        assert secret not in rotated.output

    again = rotate("--json")  # idempotent: nothing left to do, nothing rewritten
    assert again.exit_code == 0, again.output
    assert {name: c["rotated"] for name, c in columns(again).items()} == {
        "shops.credentials": 0,
        "shop_authorizations.secrets": 0,
    }
    assert columns(again)["shops.credentials"]["current"] == 3

    checked = rotate("--check")
    assert checked.exit_code == 0, checked.output
    assert "the older keys can be dropped" in checked.stdout

    new_only = bootstrap(keyed(backend.settings, new))
    try:
        assert read_everything(new_only, ids) == EXPECTED
    finally:
        new_only.close()
    with pytest.raises(CredentialKeyError):  # truly re-encrypted: the old key reads nothing
        read_everything(old_hub, ids)


def test_a_value_no_key_decrypts_is_reported_and_the_rest_still_rotated(
    backend: Backend,
    old_hub: Container,
    keys: tuple[bytes, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = keys
    ids = populate(old_hub)
    lost = FernetCredentialCipher([Fernet.generate_key()]).encrypt({"access_token": "lost"})
    with old_hub.engine.begin() as db:
        db.execute(update(SHOPS).where(SHOPS.c.id == ids["etsy"]).values(credentials=lost))
    hub_env(monkeypatch, backend.settings, new, old)

    result = rotate("--json")
    assert result.exit_code == 1
    assert "1 encrypted value cannot be decrypted" in result.stderr
    assert f"shops.credentials ids {ids['etsy']}" in result.stderr
    report = columns(result)["shops.credentials"]
    assert (report["rotated"], report["unreadable"]) == (2, 1)
    assert columns(result)["shop_authorizations.secrets"]["rotated"] == 1
    with old_hub.engine.connect() as db:  # left as it was, for an operator with the right key
        kept = db.execute(select(SHOPS.c.credentials).where(SHOPS.c.id == ids["etsy"])).scalar()
    assert kept == lost


def test_a_token_refresh_running_during_the_rotation_is_never_lost(
    backend: Backend, old_hub: Container, keys: tuple[bytes, bytes]
) -> None:
    """The refresh holds the shop's credential lock while it exchanges the refresh token (a
    worker not yet restarted with the new keys: it writes under the old key). The rotation read
    the old token before; it waits for the lock, reads the refreshed token again and re-encrypts
    that one, never the token it read first."""
    old, new = keys
    ids = populate(old_hub)
    shop = ShopContext(shop_id=ids["etsy"], external_id="etsy-shop")
    exchanging, release = threading.Event(), threading.Event()
    refreshed = {"access_token": "777.etsy-access-new", "refresh_token": "777.etsy-refresh-new"}

    def exchange(current: Mapping[str, Any]) -> Mapping[str, Any]:
        assert current["refresh_token"] == ETSY_TOKENS["refresh_token"]
        exchanging.set()
        assert release.wait(10)
        return refreshed

    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            SqlCredentialStore(old_hub).refresh(shop, ETSY_TOKENS["access_token"], exchange)
        except BaseException as error:
            errors.append(error)
            exchanging.set()

    rotating = bootstrap(keyed(backend.settings, new, old))
    cipher = rotating.cipher
    assert isinstance(cipher, FernetCredentialCipher)
    reports: list[Any] = []
    refresher = threading.Thread(target=refresh)
    rotator = threading.Thread(
        target=lambda: reports.extend(rotate_all(rotating.engine, cipher, rotating.uow))
    )
    try:
        refresher.start()
        assert exchanging.wait(10)
        rotator.start()
        time.sleep(0.5)
        assert rotator.is_alive(), "the rotation must wait for the shop's credential lock"
        release.set()
        refresher.join(15)
        rotator.join(15)
        assert not errors, errors
        assert not rotator.is_alive()
        assert not refresher.is_alive()
        assert reports[0].rotated == 3
        assert reports[0].busy == 0
        assert check_all(rotating.engine, cipher)[0].stale == 0
    finally:
        release.set()
        rotating.close()
    new_only = bootstrap(keyed(backend.settings, new))
    try:
        assert read_everything(new_only, ids)["etsy"] == refreshed
    finally:
        new_only.close()
