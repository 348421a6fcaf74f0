"""The stock rules of DESIGN flow 4, on plain integers."""

from __future__ import annotations

import pytest

from hub.domain.catalog import BlankUsage
from hub.domain.errors import InvalidInput
from hub.domain.stock import BlankLevel, available_quantity, blank_deltas, line_reservation


class TestAvailableQuantity:
    def test_minimum_over_blanks_of_free_units_divided_by_usage(self) -> None:
        levels = [BlankLevel(on_hand=10, reserved=3, quantity_per_unit=1), BlankLevel(9, 0, 2)]
        assert available_quantity(levels, buffer=0, maximum=100) == 4  # min(7, floor(9/2))

    def test_buffer_is_subtracted_and_result_floored_at_zero(self) -> None:
        assert available_quantity([BlankLevel(5, 0, 1)], buffer=2, maximum=100) == 3
        assert available_quantity([BlankLevel(5, 0, 1)], buffer=9, maximum=100) == 0

    def test_oversold_blank_never_shows_negative(self) -> None:
        assert available_quantity([BlankLevel(2, 5, 1)], buffer=0, maximum=100) == 0

    def test_capped_at_shop_maximum(self) -> None:
        assert available_quantity([BlankLevel(500, 0, 1)], buffer=0, maximum=50) == 50

    def test_variant_without_blanks_is_untracked_and_shows_the_cap(self) -> None:
        assert available_quantity([], buffer=3, maximum=25) == 25


class TestLineReservation:
    @pytest.mark.parametrize(
        ("quantity", "fulfilled", "paid", "cancelled", "expected"),
        [
            (3, 0, True, False, 3),
            (3, 1, True, False, 2),
            (3, 5, True, False, 0),
            (3, 0, False, False, 0),
            (3, 0, True, True, 0),
        ],
    )
    def test_reserves_what_is_left_to_ship_on_paid_live_orders(
        self, quantity: int, fulfilled: int, paid: bool, cancelled: bool, expected: int
    ) -> None:
        assert (
            line_reservation(quantity=quantity, fulfilled=fulfilled, paid=paid, cancelled=cancelled)
            == expected
        )


class TestBlankDeltas:
    def test_units_are_multiplied_by_quantity_per_unit_and_summed_per_blank(self) -> None:
        usage = {1: [BlankUsage(10, 1), BlankUsage(11, 2)], 2: [BlankUsage(10, 3)]}
        assert blank_deltas({1: 2, 2: -1}, usage) == {10: -1, 11: 4}

    def test_changes_that_cancel_out_are_dropped(self) -> None:
        usage = {1: [BlankUsage(10, 1)], 2: [BlankUsage(10, 1)]}
        assert blank_deltas({1: 2, 2: -2}, usage) == {}

    def test_quantity_per_unit_must_be_positive(self) -> None:
        with pytest.raises(InvalidInput, match="quantity_per_unit"):
            BlankUsage(1, 0)
