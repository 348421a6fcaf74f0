"""`hub bindings`, `hub resync`, `hub jobs`, `hub events` and `hub catalog import` on the
embedded defaults: each command's effect (rows written, messages queued, JSON shapes) and an
error path. No marketplace is called: the commands only queue work for the sync engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select

from cli import bindings as bindings_cli
from hub.bootstrap import Container
from hub.domain.shops import PushKind
from hub.infrastructure.outbound import OUTBOX
from sync.infrastructure import events
from sync.infrastructure import operations as ops
from tests.factories import World
from tests.integration.conftest import hub, ok


@pytest.fixture
def world(hub_db: Container) -> World:
    return World(hub_db)


def failed(result: Result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    for phrase in phrases:
        assert phrase in result.stderr


def messages(container: Container, actor: str) -> list[dict[str, Any]]:
    with container.engine.connect() as db:
        rows = db.execute(select(OUTBOX.c.payload).where(OUTBOX.c.actor == actor)).scalars()
        return [dict(row) for row in rows]


def push_version(container: Container, shop_id: int, variant_id: int, kind: PushKind) -> int:
    with container.uow() as uow:
        binding = uow.bindings.find(shop_id, variant_id)
    assert binding is not None
    return binding.push_states[kind].desired_version


def failed_job(container: Container, shop_id: int) -> int:
    with container.engine.begin() as db:
        job_id = ops.request_catalog_pull(db, shop_id, "test")
        ops.record_attempt(db, job_id, ok=False, duration_ms=12, error="HTTP 503")
        ops.finish(db, job_id, ops.FAILED, error="listing scan refused: 403 scope missing")
    return job_id


def shop(world: World) -> str:
    return str(world.shop_id)


class TestBindings:
    def test_list_as_json(self, world: World) -> None:
        [row] = json.loads(ok(hub("bindings", "list", "--shop", shop(world), "--json")).stdout)
        assert row["sku"] == "SUN-M"
        assert row["listing"] == "prod-1"
        assert row["available"] == 10
        assert set(row["push"]) == {"stock", "price", "images"}
        assert "SUN-M" in ok(hub("bindings", "list", "--shop", shop(world))).stdout

    def test_list_of_an_unknown_shop(self, world: World) -> None:
        failed(hub("bindings", "list", "--shop", "99"), "shop 99 does not exist", "hub shops list")

    def test_auto_queues_a_catalog_job(self, world: World) -> None:
        result = ok(hub("bindings", "auto", "--shop", shop(world)))
        with world.container.engine.connect() as db:
            [job] = ops.list_operations(db, kind="catalog.pull")
        assert f"queued as job {job.id}" in result.stdout
        assert job.status == "queued"
        assert job.shop_id == world.shop_id
        assert messages(world.container, "catalog.pull") == [{"operation_id": job.id}]

    def test_auto_wait_prints_the_jobs_report(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def worker_finishes(_seconds: float) -> None:
            with world.container.engine.begin() as db:
                [job] = ops.list_operations(db, kind="catalog.pull")
                report = {
                    "bound": [{"sku": "SUN-STICKER", "listing_id": "prod-9"}],
                    "already_bound": 1,
                    "unknown_skus": [{"sku": "MYSTERY"}],
                    "missing_sku": [],
                    "conflicts": [{"sku": "DUP", "reason": "two listings have this SKU"}],
                }
                ops.finish(db, job.id, ops.SUCCEEDED, result=report)

        monkeypatch.setattr(bindings_cli.time, "sleep", worker_finishes)
        result = ok(hub("bindings", "auto", "--shop", shop(world), "--wait"))
        assert "bound 1, already bound 1" in result.stdout
        assert "SUN-STICKER -> listing prod-9" in result.stdout
        assert "DUP: two listings have this SKU" in result.stdout
        assert "SKUs we do not have: MYSTERY" in result.stdout

    def test_auto_refuses_a_paused_shop_and_wait_times_out(self, world: World) -> None:
        ok(hub("shops", "pause", shop(world)))
        failed(
            hub("bindings", "auto", "--shop", shop(world)),
            f"shop {world.shop_id} is paused; resume it first with `hub shops resume",
        )
        ok(hub("shops", "resume", shop(world)))
        failed(
            hub("bindings", "auto", "--shop", shop(world), "--wait", "--timeout", "0"),
            "is still queued after 0s; is a worker running",
        )

    def test_set_binds_by_sku_and_queues_its_pushes(self, world: World) -> None:
        result = ok(
            hub(
                "bindings", "set", "--shop", shop(world), "--sku", "SUN-STICKER",
                "--listing", "prod-2", "--variant", "gid-var-2", "--inventory-item", "inv-2",
            )
        )  # fmt: skip
        assert f"SKU 'SUN-STICKER' (variant {world.sticker_id}) bound to listing prod-2" in (
            result.stdout
        )
        with world.container.uow() as uow:
            binding = uow.bindings.find(world.shop_id, world.sticker_id)
        assert binding is not None
        assert (binding.external_variant_id, binding.external_inventory_item_id) == (
            "gid-var-2",
            "inv-2",
        )

    def test_set_an_unknown_sku_and_without_a_listing(self, world: World) -> None:
        failed(
            hub("bindings", "set", "--shop", shop(world), "--sku", "NOPE", "--listing", "p"),
            f"seller {world.seller_id} has no variant with SKU 'NOPE'",
        )
        assert hub("bindings", "set", "--shop", shop(world), "--sku", "SUN-M").exit_code == 2

    def test_unset_removes_the_binding(self, world: World) -> None:
        ok(hub("bindings", "unset", "--shop", shop(world), "--sku", "SUN-M"))
        with world.container.uow() as uow:
            assert uow.bindings.find(world.shop_id, world.variant_id) is None

    def test_unset_an_unbound_sku(self, world: World) -> None:
        failed(
            hub("bindings", "unset", "--shop", shop(world), "--sku", "SUN-STICKER"),
            f"has no binding for variant {world.sticker_id}",
            f"hub bindings list --shop {world.shop_id}",
        )


class TestResync:
    def test_orders_queues_a_pull_since_a_time_or_one_order(self, world: World) -> None:
        ok(hub("resync", "orders", "--shop", shop(world), "--since", "2026-10-01T08:00:00Z"))
        ok(hub("resync", "orders", "--shop", shop(world)))
        result = ok(hub("resync", "orders", "--shop", shop(world), "--order", "5001"))
        assert "a running relay publishes it" in result.stdout
        assert messages(world.container, "orders.pull") == [
            {"shop_id": world.shop_id, "since": "2026-10-01T08:00:00+00:00"},
            {"shop_id": world.shop_id},
        ]
        assert messages(world.container, "orders.import_one") == [
            {"shop_id": world.shop_id, "external_id": "5001"}
        ]

    def test_orders_usage_errors_and_a_paused_shop(self, world: World) -> None:
        both = hub("resync", "orders", "--shop", shop(world), "--order", "1", "--since", "2026")
        assert both.exit_code == 2
        assert "--since and --order do not go together" in both.stderr
        assert hub("resync", "orders", "--shop", shop(world), "--since", "soon").exit_code == 2
        ok(hub("shops", "pause", shop(world)))
        failed(hub("resync", "orders", "--shop", shop(world)), "is paused")
        assert messages(world.container, "orders.pull") == []

    def test_stock_bumps_the_quantity_push(self, world: World) -> None:
        before = world.stock_version()
        ok(hub("resync", "stock", "--shop", shop(world)))
        ok(hub("resync", "stock", "--shop", shop(world), "--sku", "SUN-M"))
        assert world.stock_version() == before + 2
        assert messages(world.container, "stock.push")  # the trigger's delayed message

    def test_stock_of_an_unbound_sku(self, world: World) -> None:
        failed(
            hub("resync", "stock", "--shop", shop(world), "--sku", "SUN-STICKER"),
            "SKU 'SUN-STICKER' is not bound in shop",
            "hub bindings auto",
        )

    def test_catalog_queues_a_scan_job(self, world: World) -> None:
        result = ok(hub("resync", "catalog", "--shop", shop(world)))
        with world.container.engine.connect() as db:
            [job] = ops.list_operations(db, kind="catalog.pull")
        assert f"job {job.id}" in result.stdout
        assert job.payload == {"shop_id": world.shop_id, "reason": "cli"}

    def test_catalog_of_an_unknown_shop(self, world: World) -> None:
        failed(hub("resync", "catalog", "--shop", "77"), "shop 77 does not exist")

    def test_images_bumps_the_image_push_of_the_skus_bindings(self, world: World) -> None:
        before = push_version(world.container, world.shop_id, world.variant_id, PushKind.IMAGES)
        result = ok(hub("resync", "images", "--sku", "SUN-M"))
        assert "images queued for 1 binding(s)" in result.stdout
        after = push_version(world.container, world.shop_id, world.variant_id, PushKind.IMAGES)
        assert after == before + 1
        assert messages(world.container, "images.push")

    def test_images_of_an_unknown_sku(self, world: World) -> None:
        failed(hub("resync", "images", "--sku", "NOPE"), "no seller has a variant with SKU")


class TestJobs:
    def test_list_filters_by_status_and_failed_lists_failures(self, world: World) -> None:
        job_id = failed_job(world.container, world.shop_id)
        ok(hub("resync", "catalog", "--shop", shop(world)))
        rows = json.loads(ok(hub("jobs", "list", "--status", "failed", "--json")).stdout)
        assert [(r["id"], r["status"]) for r in rows] == [(job_id, "failed")]
        every = json.loads(ok(hub("jobs", "list", "--shop", shop(world), "--json")).stdout)
        assert len(every) == 2
        assert every[0]["created_at"].endswith("+00:00")  # ISO dates
        failures = json.loads(ok(hub("jobs", "failed", "--json")).stdout)
        assert [r["last_error"] for r in failures] == ["listing scan refused: 403 scope missing"]
        assert "catalog.pull" in ok(hub("jobs", "failed")).stdout

    def test_list_with_an_unknown_status_and_failed_with_a_zero_limit(self, world: World) -> None:
        assert hub("jobs", "list", "--status", "lost").exit_code == 2
        assert hub("jobs", "failed", "--limit", "0").exit_code == 2

    def test_show_includes_the_attempt_log(self, world: World) -> None:
        job_id = failed_job(world.container, world.shop_id)
        shown = json.loads(ok(hub("jobs", "show", str(job_id), "--json")).stdout)
        assert shown["status"] == "failed"
        assert [a["error"] for a in shown["attempt_log"]] == ["HTTP 503"]
        text = ok(hub("jobs", "show", str(job_id))).stdout
        assert f"retry it with `hub jobs retry {job_id}`" in text

    def test_show_an_unknown_job(self, world: World) -> None:
        failed(hub("jobs", "show", "404"), "job 404 does not exist; see `hub jobs list`")

    def test_retry_requeues_a_failed_job_with_a_fresh_budget(self, world: World) -> None:
        job_id = failed_job(world.container, world.shop_id)
        result = ok(hub("jobs", "retry", str(job_id)))
        assert f"job {job_id} catalog.pull (shop {world.shop_id}) queued again" in result.stdout
        with world.container.engine.connect() as db:
            job = ops.get(db, job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("queued", 0)
        assert messages(world.container, "catalog.pull").count({"operation_id": job_id}) == 2

    def test_retry_a_job_that_did_not_fail(self, world: World) -> None:
        ok(hub("resync", "catalog", "--shop", shop(world)))
        with world.container.engine.connect() as db:
            [job] = ops.list_operations(db)
        failed(
            hub("jobs", "retry", str(job.id)),
            f"job {job.id} not retried: it is queued; only failed jobs are retried",
        )


def store(container: Container, key: str, shop_id: int | None, **extra: Any) -> int:
    stored = events.store_event(
        container.engine,
        events.IncomingEvent(
            marketplace="shopify",
            event_key=key,
            topic="orders/updated",
            body=b'{"id": 5001}',
            resource_id="5001",
            shop_id=shop_id,
            **extra,
        ),
    )
    assert stored.id is not None
    return stored.id


class TestEvents:
    def test_list_and_show_with_the_body(self, world: World) -> None:
        event_id = store(world.container, "e-1", world.shop_id)
        [row] = json.loads(ok(hub("events", "list", "--shop", shop(world), "--json")).stdout)
        assert (row["id"], row["status"], row["body_bytes"]) == (event_id, "received", 12)
        assert "orders/updated" in ok(hub("events", "list")).stdout
        shown = json.loads(ok(hub("events", "show", str(event_id), "--body", "--json")).stdout)
        assert shown["body"] == '{"id": 5001}'
        assert shown["received_at"].endswith("+00:00")

    def test_list_with_an_unknown_status_and_show_an_unknown_event(self, world: World) -> None:
        assert hub("events", "list", "--status", "lost").exit_code == 2
        failed(hub("events", "show", "9"), "event 9 not shown: it does not exist")

    def test_replay_sets_received_and_queues_it(self, world: World) -> None:
        event_id = store(world.container, "e-2", world.shop_id)
        with world.container.engine.begin() as db:
            events.mark(db, event_id, events.HANDLED)
        result = ok(hub("events", "replay", str(event_id)))
        assert f"event {event_id} (orders/updated, shop {world.shop_id}) queued again" in (
            result.stdout
        )
        with world.container.engine.connect() as db:
            event = events.load_event(db, event_id)
        assert event is not None
        assert event.status == events.RECEIVED
        assert messages(world.container, "inbound.process") == [{"event_id": event_id}] * 2

    def test_replay_an_event_of_no_known_shop(self, world: World) -> None:
        event_id = store(world.container, "e-3", None, shop_reference="gone.myshopify.com")
        failed(
            hub("events", "replay", str(event_id)),
            "names no known shop (unknown shop 'gone.myshopify.com')",
            "hub shops add",
        )


def catalog_file(tmp_path: Path, seller_id: int, products: int) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "seller_id": seller_id,
                "blanks": [{"code": "MUG-11OZ", "name": "Mug 11oz", "on_hand": 30}],
                "products": [
                    {
                        "title": f"Mug {n}",
                        "variants": [
                            {"sku": f"MUG-{n}", "price": "12.00", "blanks": [{"code": "MUG-11OZ"}]}
                        ],
                    }
                    for n in range(products)
                ],
            }
        )
    )
    return path


class TestCatalogImport:
    def test_import_creates_then_skips_and_reports_as_json(
        self, world: World, tmp_path: Path
    ) -> None:
        path = catalog_file(tmp_path, world.seller_id, 25)  # over the progress bar's threshold
        result = ok(hub("catalog", "import", str(path)))
        assert "1 blank(s) created, 0 reused; 25 product(s) created, 0 skipped" in result.stdout
        with world.container.uow() as uow:
            found = uow.catalog.variants_by_sku(world.seller_id, [f"MUG-{n}" for n in range(25)])
        assert len(found) == 25
        again = json.loads(ok(hub("catalog", "import", str(path), "--json")).stdout)
        assert again["blanks_reused"] == ["MUG-11OZ"]
        assert len(again["products_skipped"]) == 25
        assert again["products_created"] == []

    def test_a_bad_file_writes_nothing(self, world: World, tmp_path: Path) -> None:
        path = catalog_file(tmp_path, world.seller_id, 2)
        text = path.read_text().replace('"on_hand": 30', '"on_hand": -30')
        path.write_text(text)
        failed(
            hub("catalog", "import", str(path)),
            "catalog catalog.json not imported: blank 'MUG-11OZ': on_hand must be",
            "fix the file and import it again",
        )
        with world.container.uow() as uow:
            assert uow.catalog.variants_by_sku(world.seller_id, ["MUG-0"]) == {}
        assert hub("catalog", "import", str(tmp_path / "missing.json")).exit_code == 2
