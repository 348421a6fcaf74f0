"""Order rules: import merge, production status, fulfillment (DESIGN flow 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.domain.errors import Conflict, InvalidInput, InvalidTransition
from hub.domain.orders import (
    FulfillmentLine,
    ImportLine,
    ImportOrder,
    ImportOutcome,
    LineMatch,
    ProductionStatus,
    apply_import,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def command(
    *,
    updated: datetime = T0,
    lines: tuple[ImportLine, ...] | None = None,
    paid: bool = True,
    cancelled: bool = False,
    refunded: bool = False,
    status: str = "paid",
) -> ImportOrder:
    return ImportOrder(
        shop_id=1,
        external_id="1001",
        external_number="#1001",
        external_status=status,
        external_updated_at=updated,
        placed_at=T0,
        currency="USD",
        total=Decimal("48.00"),
        paid=paid,
        cancelled=cancelled,
        refunded=refunded,
        lines=lines
        if lines is not None
        else (
            ImportLine("L1", 2, Decimal("12.00"), sku="TEE-M", external_variant_id="gid-1"),
            ImportLine("L2", 1, Decimal("24.00"), sku="MUG"),
        ),
    )


MATCHED = {"L1": LineMatch(variant_id=7, binding_id=70), "L2": "no binding for SKU MUG"}


def imported(cmd: ImportOrder | None = None) -> ImportOutcome:
    outcome = apply_import(None, cmd or command(), seller_id=5, matches=MATCHED)
    order = outcome.order
    for number, line in enumerate(order.lines, start=1):
        line.id = number  # as the repository would assign
    return outcome


class TestImport:
    def test_new_order_reserves_only_mapped_lines_and_keeps_unmapped_with_reason(self) -> None:
        outcome = imported()
        assert outcome.created
        assert outcome.applied
        assert outcome.reservation_changes == {7: 2}
        unmapped = outcome.order.lines[1]
        assert unmapped.variant_id is None
        assert unmapped.unmapped_reason == "no binding for SKU MUG"
        assert outcome.order.seller_id == 5

    def test_older_update_never_overwrites_a_newer_one(self) -> None:
        order = imported(command(updated=T0)).order
        stale = command(updated=T0 - timedelta(seconds=1), status="cancelled", cancelled=True)
        outcome = apply_import(order, stale, seller_id=5, matches=MATCHED)
        assert not outcome.applied
        assert order.external_status == "paid"

    def test_equal_update_is_reapplied_without_changing_reservations(self) -> None:
        order = imported().order
        outcome = apply_import(order, command(), seller_id=5, matches=MATCHED)
        assert outcome.applied
        assert not outcome.created
        assert outcome.reservation_changes == {}
        assert [line.id for line in outcome.order.lines] == [1, 2]

    def test_lines_are_replaced_keeping_ids_and_fulfilled_quantities(self) -> None:
        order = imported().order
        order.lines[0].fulfilled_quantity = 1
        newer = command(
            updated=T0 + timedelta(minutes=1),
            lines=(ImportLine("L1", 3, Decimal("12.00"), external_variant_id="gid-1"),),
        )
        outcome = apply_import(order, newer, seller_id=5, matches=MATCHED)
        assert [(line.id, line.quantity, line.fulfilled_quantity) for line in order.lines] == [
            (1, 3, 1)
        ]
        assert outcome.reservation_changes == {}
        assert order.lines[0].reserved_quantity == 2  # 3 ordered - 1 shipped

    def test_refund_reducing_quantity_releases_reservation(self) -> None:
        order = imported().order
        smaller = command(
            updated=T0 + timedelta(minutes=1),
            lines=(ImportLine("L1", 1, Decimal("12.00"), external_variant_id="gid-1"),),
        )
        outcome = apply_import(order, smaller, seller_id=5, matches=MATCHED)
        assert outcome.reservation_changes == {7: -1}

    def test_cancellation_before_production_cancels_and_releases(self) -> None:
        order = imported().order
        outcome = apply_import(
            order,
            command(updated=T0 + timedelta(minutes=1), cancelled=True, status="cancelled"),
            seller_id=5,
            matches=MATCHED,
        )
        assert order.status is ProductionStatus.CANCELLED
        assert order.external_status == "cancelled"
        assert outcome.reservation_changes == {7: -2}
        assert not order.needs_review

    def test_cancellation_after_production_started_is_flagged_for_review(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.IN_PRODUCTION)
        apply_import(
            order,
            command(updated=T0 + timedelta(minutes=1), cancelled=True),
            seller_id=5,
            matches=MATCHED,
        )
        assert order.status is ProductionStatus.IN_PRODUCTION
        assert order.cancelled
        assert order.needs_review
        assert order.review_reason is not None
        assert "cancelled" in order.review_reason

    def test_refund_after_production_started_is_flagged_for_review(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.IN_PRODUCTION)
        apply_import(
            order,
            command(updated=T0 + timedelta(minutes=1), refunded=True),
            seller_id=5,
            matches=MATCHED,
        )
        assert order.refunded
        assert order.needs_review

    def test_unpaid_order_reserves_nothing_until_paid(self) -> None:
        outcome = imported(command(paid=False, status="pending"))
        assert outcome.reservation_changes == {}
        paid = apply_import(
            outcome.order, command(updated=T0 + timedelta(minutes=1)), seller_id=5, matches=MATCHED
        )
        assert paid.reservation_changes == {7: 2}

    def test_duplicate_line_ids_are_refused(self) -> None:
        with pytest.raises(InvalidInput, match="appears twice"):
            command(lines=(ImportLine("L1", 1, Decimal(1)), ImportLine("L1", 1, Decimal(1))))


class TestProductionStatus:
    def test_allowed_path(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.IN_PRODUCTION)
        assert order.status is ProductionStatus.IN_PRODUCTION

    def test_refused_transition_names_both_states(self) -> None:
        order = imported().order
        with pytest.raises(InvalidTransition, match="from received to delivered"):
            order.change_status(ProductionStatus.DELIVERED)

    def test_shipped_cannot_be_set_directly(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.IN_PRODUCTION)
        with pytest.raises(InvalidTransition, match="fulfillments"):
            order.change_status(ProductionStatus.SHIPPED)

    def test_cancelled_is_final(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.CANCELLED)
        with pytest.raises(InvalidTransition, match="from cancelled to in_production"):
            order.change_status(ProductionStatus.IN_PRODUCTION)


class TestFulfill:
    def test_partial_fulfillment_ships_units_and_lowers_reservation(self) -> None:
        order = imported().order
        shipped = order.fulfill([FulfillmentLine(order_line_id=1, quantity=1)])
        assert shipped == {7: 1}
        assert order.lines[0].reserved_quantity == 1
        assert order.status is ProductionStatus.RECEIVED

    def test_fulfilling_every_line_ships_the_order(self) -> None:
        order = imported().order
        order.fulfill([FulfillmentLine(1, 2), FulfillmentLine(2, 1)])
        assert order.status is ProductionStatus.SHIPPED
        assert order.reserved_by_variant() == {}

    def test_more_than_remaining_is_a_conflict(self) -> None:
        order = imported().order
        with pytest.raises(Conflict, match="only 2 left"):
            order.fulfill([FulfillmentLine(1, 3)])

    def test_unknown_line_is_refused(self) -> None:
        order = imported().order
        with pytest.raises(InvalidInput, match="line 99"):
            order.fulfill([FulfillmentLine(99, 1)])

    def test_cancelled_order_cannot_be_fulfilled(self) -> None:
        order = imported().order
        order.change_status(ProductionStatus.CANCELLED)
        with pytest.raises(InvalidTransition):
            order.fulfill([FulfillmentLine(1, 1)])
