"""`hub sellers` and `hub shops` on the embedded defaults: each command's effect and an error."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from hub.bootstrap import Container
from hub.domain.shops import Marketplace, ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import TRIGGERS
from hub.infrastructure.tables import ShopRow, table_of
from sync.infrastructure import cursors, events
from sync.infrastructure import operations as ops
from tests.factories import World, later
from tests.integration.conftest import hub, ok

SHOPS = table_of(ShopRow)


class TestSellers:
    def test_list_shows_sellers_with_their_shop_counts(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        ok(hub("sellers", "add", "Second"))
        rows = json.loads(ok(hub("sellers", "list", "--json")).stdout)
        assert [(r["id"], r["name"], r["shops"]) for r in rows] == [
            (world.seller_id, "Acme Prints", 1),
            (world.seller_id + 1, "Second", 0),
        ]
        assert "Acme Prints" in ok(hub("sellers", "list")).stdout

    def test_add_refuses_an_empty_name(self, hub_db: Container) -> None:
        result = hub("sellers", "add", "  ")
        assert result.exit_code == 1
        assert "seller '  ' not created: a seller needs a name" in result.stderr

    def test_list_on_a_database_never_migrated_says_to_upgrade(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "empty"))
        result = hub("sellers", "list")
        assert result.exit_code == 1
        assert "no such table: sellers" in result.stderr
        assert "run `hub db upgrade`" in result.stderr


class TestShopsAdd:
    def test_credentials_from_the_environment_are_stored_encrypted_and_never_echoed(
        self, hub_db: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world = World(hub_db, bind=False)
        monkeypatch.setenv("HUB_SHOP_CREDENTIAL_CONSUMER_KEY", "ck_secret_1")
        monkeypatch.setenv("HUB_SHOP_CREDENTIAL_CONSUMER_SECRET", "cs_secret_2")
        result = ok(
            hub(
                "shops", "add", "--seller", str(world.seller_id), "--marketplace", "woocommerce",
                "--external-id", "https://wood.example", "--name", "Wood",
                "--credentials-env", "HUB_SHOP_CREDENTIAL_",
            )
        )  # fmt: skip
        assert "credentials stored encrypted (consumer_key, consumer_secret)" in result.stdout
        assert "secret_1" not in result.output
        shop_id = int(result.stdout.split()[1])
        with hub_db.engine.connect() as db:
            raw = db.execute(select(SHOPS.c.credentials).where(SHOPS.c.id == shop_id)).scalar()
        assert raw is not None
        assert "ck_secret_1" not in raw
        with hub_db.uow() as uow:
            shop = uow.shops.get(shop_id)
        assert shop is not None
        assert shop.credentials == {"consumer_key": "ck_secret_1", "consumer_secret": "cs_secret_2"}

    def test_a_credential_can_be_pasted_at_a_hidden_prompt(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        result = ok(
            hub(
                "shops", "add", "--seller", str(world.seller_id), "--marketplace", "etsy",
                "--external-id", "777", "--name", "Etsy shop",
                "--credential", "access_token", "--credential", "refresh_token=rt",
                input="pasted-token\n",
            )
        )  # fmt: skip
        assert "pasted-token" not in result.output
        with hub_db.uow() as uow:
            shop = uow.shops.find_by_external(Marketplace.ETSY, "777")
        assert shop is not None
        assert shop.credentials == {"access_token": "pasted-token", "refresh_token": "rt"}

    def test_both_credential_sources_are_a_usage_error(self, hub_db: Container) -> None:
        result = hub(
            "shops", "add", "--seller", "1", "--marketplace", "shopify", "--external-id", "x",
            "--name", "X", "--credential", "a=b", "--credentials-env", "HUB_SHOP_",
        )  # fmt: skip
        assert result.exit_code == 2
        assert "--credential or with --credentials-env, not both" in result.stderr

    def test_an_unknown_seller_fails_with_what_to_do(self, hub_db: Container) -> None:
        result = hub(
            "shops", "add", "--seller", "42", "--marketplace", "shopify",
            "--external-id", "x.myshopify.com", "--name", "X", "--credential", "access_token=t",
        )  # fmt: skip
        assert result.exit_code == 1
        assert "shopify shop 'x.myshopify.com' not added: seller 42 does not exist" in (
            result.stderr
        )
        assert "hub sellers list" in result.stderr

    def test_an_unknown_marketplace_is_a_usage_error(self, hub_db: Container) -> None:
        result = hub(
            "shops", "add", "--seller", "1", "--marketplace", "amazon", "--external-id", "x",
            "--name", "X",
        )  # fmt: skip
        assert result.exit_code == 2


class TestShopsList:
    def test_json_lists_shops_without_secrets(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        result = ok(hub("shops", "list", "--json"))
        assert "shpat_secret" not in result.output
        [row] = json.loads(result.stdout)
        assert row["id"] == world.shop_id
        assert row["credential_keys"] == ["access_token"]
        assert row["status"] == "active"
        assert "acme.myshopify.com" in ok(hub("shops", "list")).stdout

    def test_a_non_numeric_seller_is_a_usage_error(self, hub_db: Container) -> None:
        assert hub("shops", "list", "--seller", "acme").exit_code == 2


class TestPauseResume:
    def test_pause_then_resume_requeues_the_stock_push(self, hub_db: Container) -> None:
        world = World(hub_db)
        with hub_db.engine.begin() as db:
            db.execute(TRIGGERS.delete())
        ok(hub("shops", "pause", str(world.shop_id)))
        with hub_db.uow() as uow:
            assert uow.shops.get(world.shop_id).status is ShopStatus.PAUSED  # type: ignore[union-attr]
        version = world.stock_version()
        result = ok(hub("shops", "resume", str(world.shop_id)))
        assert "resumed" in result.stdout
        assert world.stock_version() == version + 1
        with hub_db.engine.connect() as db:
            triggers = db.execute(select(TRIGGERS.c.kind, TRIGGERS.c.shop_id)).all()
        assert ("stock", world.shop_id) in [tuple(t) for t in triggers]

    def test_pause_an_unknown_shop_and_resume_an_active_one_fail(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        result = hub("shops", "pause", "99")
        assert result.exit_code == 1
        assert "shop 99 not paused: shop 99 does not exist; see `hub shops list`" in result.stderr
        result = hub("shops", "resume", str(world.shop_id))
        assert result.exit_code == 1
        assert "only a paused shop resumes" in result.stderr


class TestShopsStatus:
    def test_reports_pull_lag_webhooks_and_failed_jobs(self, hub_db: Container) -> None:
        world = World(hub_db)
        world.import_order("5001", updated=later(5))
        with hub_db.engine.begin() as db:
            cursors.advance(db, world.shop_id, "orders", later(5))
            failed_id = ops.request_catalog_pull(db, world.shop_id, "test")
            ops.finish(db, failed_id, ops.FAILED, error="listing scan refused")
        events.store_event(
            hub_db.engine,
            events.IncomingEvent(
                marketplace="shopify",
                event_key="evt-1",
                topic="orders/updated",
                body=b"{}",
                resource_id="5001",
                shop_id=world.shop_id,
            ),
        )
        [row] = json.loads(ok(hub("shops", "status", "--json")).stdout)
        now = utcnow()
        assert row["shop_id"] == world.shop_id
        assert row["status"] == "active"
        assert row["last_pull_at"] is not None
        assert row["newest_order_at"].startswith(later(5).isoformat()[:19])
        expected_lag = (now - later(5)).total_seconds()
        assert abs(row["lag_seconds"] - expected_lag) < 60
        assert row["webhook_management"] == "api"
        assert row["last_delivery_at"] is not None
        assert row["webhook_state"].startswith("api (unchecked): last delivery")
        assert row["failed_operations"] == 1
        table = ok(hub("shops", "status", str(world.shop_id))).stdout
        assert "shopify Acme" in table
        assert f"1 failed job(s); see `hub jobs failed --shop {world.shop_id}`" in table

    def test_a_never_pulled_shop_and_an_unknown_shop(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        with hub_db.engine.begin() as db:
            db.execute(
                update(SHOPS).where(SHOPS.c.id == world.shop_id).values(status="auth_failed")
            )
        table = ok(hub("shops", "status")).stdout
        assert "never" in table
        assert "refused its credentials" in table
        result = hub("shops", "status", "99")
        assert result.exit_code == 1
        assert "no status for shop 99: shop 99 does not exist" in result.stderr


def test_lag_helper_formats_durations() -> None:
    from cli.output import duration

    assert duration(timedelta(days=2, hours=3).total_seconds()) == "2d 3h"
    assert duration(125) == "2m 5s"
    assert duration(None) == "-"


class TestConnect:
    def test_shopify_prints_the_install_url_and_remembers_only_the_states_hash(
        self, hub_db: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from urllib.parse import parse_qs, urlsplit

        from hub.infrastructure.onboarding import AUTHORIZATIONS, state_hash

        monkeypatch.setenv("HUB_SHOPIFY_CLIENT_ID", "cli-client")
        world = World(hub_db, bind=False)
        result = ok(
            hub(
                "shops",
                "connect",
                "shopify",
                "--seller",
                str(world.seller_id),
                "--shop",
                "cli-test.myshopify.com",
                "--backfill-days",
                "90",
                "--json",
            )
        )
        started = json.loads(result.stdout)
        url = urlsplit(started["authorization_url"])
        assert url.netloc == "cli-test.myshopify.com"
        assert url.path == "/admin/oauth/authorize"
        query = parse_qs(url.query)
        assert query["client_id"] == ["cli-client"]
        state = query["state"][0]
        assert any("read_all_orders" in warning for warning in started["warnings"])
        with hub_db.engine.connect() as db:
            stored = db.execute(select(AUTHORIZATIONS.c.state_hash)).scalars().all()
        assert stored == [state_hash(state)]
        assert state not in stored

    def test_etsy_prints_a_pkce_url(
        self, hub_db: Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world = World(hub_db, bind=False)
        refused = hub("shops", "connect", "etsy", "--seller", str(world.seller_id))
        assert refused.exit_code == 1
        assert "HUB_ETSY_KEYSTRING" in refused.output  # the app is not configured yet
        monkeypatch.setenv("HUB_ETSY_KEYSTRING", "clikeystring")
        monkeypatch.setenv("HUB_ETSY_SHARED_SECRET", "cli-shared")
        result = ok(hub("shops", "connect", "etsy", "--seller", str(world.seller_id)))
        assert "code_challenge_method=S256" in result.stdout
        assert "works once" in result.stdout

    def test_shopify_without_its_domain_is_refused(self, hub_db: Container) -> None:
        world = World(hub_db, bind=False)
        result = hub("shops", "connect", "shopify", "--seller", str(world.seller_id))
        assert result.exit_code == 1
        assert "myshopify.com domain" in result.output
