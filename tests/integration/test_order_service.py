"""The order service on real storage: SQLite (embedded) and PostgreSQL with Redis (services)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from hub.application import orders, stock
from hub.application.bindings import BindingSpec, put_bindings
from hub.bootstrap import Container
from hub.domain.errors import InvalidTransition
from hub.domain.orders import FulfillmentLine, ProductionStatus
from hub.infrastructure.read_models import OrderFilter
from tests.factories import ADMIN, World, later


class TestImport:
    def test_import_reserves_blank_units_and_bumps_stock_versions(
        self, container: Container
    ) -> None:
        world = World(container)
        before = world.stock_version()
        outcome = world.import_order(quantity=3)
        assert outcome.created
        assert world.blank(world.tee_id) == (10, 3)
        assert world.blank(world.ink_id) == (100, 6)  # two ink packs per tee
        assert world.stock_version() > before

    def test_importing_the_same_update_twice_changes_nothing(self, container: Container) -> None:
        world = World(container)
        first = world.import_order()
        again = world.import_order()
        assert again.order.id == first.order.id
        assert world.blank(world.tee_id) == (10, 2)

    def test_older_update_is_ignored_and_newer_one_reconciles(self, container: Container) -> None:
        world = World(container)
        world.import_order(quantity=2, updated=later(10))
        stale = world.import_order(quantity=5, updated=later(5))
        assert not stale.applied
        assert world.blank(world.tee_id) == (10, 2)
        world.import_order(quantity=1, updated=later(20))
        assert world.blank(world.tee_id) == (10, 1)

    def test_cancellation_releases_the_reservation(self, container: Container) -> None:
        world = World(container)
        world.import_order(quantity=2)
        outcome = world.import_order(quantity=2, updated=later(1), cancelled=True)
        assert outcome.order.status is ProductionStatus.CANCELLED
        assert world.blank(world.tee_id) == (10, 0)

    def test_line_matches_by_sku_when_the_variant_id_is_unknown(self, container: Container) -> None:
        world = World(container)
        outcome = world.import_order(variant_gid="some-other-gid")
        assert outcome.order.lines[0].variant_id == world.variant_id

    def test_unmatched_line_is_kept_and_matched_when_a_binding_appears(
        self, container: Container
    ) -> None:
        world = World(container, bind=False)
        outcome = world.import_order(quantity=2)
        line = outcome.order.lines[0]
        assert line.variant_id is None
        assert line.unmapped_reason
        assert "gid-var-1" in line.unmapped_reason
        assert world.blank(world.tee_id) == (10, 0)

        world.bind()

        with container.uow() as uow:
            order = uow.orders.get(outcome.order.id or 0)
        assert order is not None
        assert order.lines[0].variant_id == world.variant_id
        assert order.lines[0].unmapped_reason is None
        assert world.blank(world.tee_id) == (10, 2)

    def test_concurrent_imports_of_one_order_create_it_once(self, container: Container) -> None:
        world = World(container)
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def run() -> None:
            try:
                barrier.wait(5)
                world.import_order("7777", quantity=1)
            except BaseException as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        rows, _ = container.read_model.list_orders(OrderFilter())
        assert [row["external_id"] for row in rows] == ["7777"], errors
        assert world.blank(world.tee_id) == (10, 1)


class TestFulfillment:
    def test_fulfillment_consumes_on_hand_and_reservation_and_ships(
        self, container: Container
    ) -> None:
        world = World(container)
        order = world.import_order(quantity=2).order
        line_id = order.lines[0].id or 0
        with container.uow() as uow:
            orders.change_status(uow, order.id or 0, ProductionStatus.IN_PRODUCTION, ADMIN)
            uow.commit()
        with container.uow() as uow:
            _, partial = orders.create_fulfillment(
                uow,
                orders.CreateFulfillment(
                    order.id or 0, "UPS", "1Z1", None, (FulfillmentLine(line_id, 1),)
                ),
                world.principal,
            )
            uow.commit()
        assert partial.status is ProductionStatus.IN_PRODUCTION
        assert world.blank(world.tee_id) == (9, 1)
        with container.uow() as uow:
            _, shipped = orders.create_fulfillment(
                uow,
                orders.CreateFulfillment(
                    order.id or 0, "UPS", "1Z2", None, (FulfillmentLine(line_id, 1),)
                ),
                world.principal,
            )
            uow.commit()
        assert shipped.status is ProductionStatus.SHIPPED
        assert world.blank(world.tee_id) == (8, 0)
        assert world.blank(world.ink_id) == (96, 0)

    def test_status_change_refused_names_both_states(self, container: Container) -> None:
        world = World(container)
        order = world.import_order().order
        with (
            container.uow() as uow,
            pytest.raises(InvalidTransition, match="received to delivered"),
        ):
            orders.change_status(uow, order.id or 0, ProductionStatus.DELIVERED, ADMIN)


class TestStockChanges:
    def test_on_hand_change_bumps_only_bindings_that_use_the_blank(
        self, container: Container
    ) -> None:
        world = World(container)
        with container.uow() as uow:
            put_bindings(
                uow,
                world.shop_id,
                [BindingSpec(world.sticker_id, "prod-2", "gid-2")],
                world.principal,
            )
            uow.commit()
        with container.uow() as uow:
            sticker = uow.bindings.find(world.shop_id, world.sticker_id)
        assert sticker is not None
        sticker_before = {k: s.desired_version for k, s in sticker.push_states.items()}
        tee_before = world.stock_version()
        with container.uow() as uow:
            stock.set_on_hand(uow, ADMIN, world.tee_id, delta=5)
            uow.commit()
        assert world.blank(world.tee_id) == (15, 0)
        assert world.stock_version() == tee_before + 1
        with container.uow() as uow:
            sticker = uow.bindings.find(world.shop_id, world.sticker_id)
        assert sticker is not None
        assert {k: s.desired_version for k, s in sticker.push_states.items()} == sticker_before

    def test_rolled_back_unit_of_work_leaves_nothing(self, container: Container) -> None:
        world = World(container)
        with container.uow() as uow:
            stock.set_on_hand(uow, ADMIN, world.tee_id, on_hand=99)
            # no commit
        assert world.blank(world.tee_id) == (10, 0)

    def test_credentials_are_stored_encrypted(self, container: Container) -> None:
        world = World(container)
        with container.engine.connect() as db:
            stored = db.execute(text("SELECT credentials FROM shops")).scalar_one()
        assert "shpat_secret" not in stored
        with container.uow() as uow:
            shop = uow.shops.get(world.shop_id)
        assert shop is not None
        assert shop.credentials == {"access_token": "shpat_secret"}
        assert "shpat_secret" not in repr(shop)
