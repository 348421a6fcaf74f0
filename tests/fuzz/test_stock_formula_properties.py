"""The stock formula (``hub.domain.stock.available_quantity``) against its definition.

DESIGN.md, "Stock out": a variant's available quantity is the minimum over its blanks of
floor((on hand - reserved) / quantity per unit), minus the shop's buffer, floored at 0 and
capped at the shop's max. Said without the formula: the largest q in 0..max such that q units,
plus ``buffer`` units held back, can be made from every blank's free stock; 0 when there is
none. The reference below searches for that q by brute force, with no division at all.
A variant with no blanks is untracked and shows the cap.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.catalog import BlankUsage
from hub.domain.stock import BlankLevel, available_quantity, blank_deltas, line_reservation

PROPERTY = settings(max_examples=300)

# On hand and reserved may both be anything the tables hold; an oversold blank (reserved above
# on hand, or a negative count after a correction) must still give 0, never a negative number.
counts = st.integers(min_value=-30, max_value=400)
levels = st.builds(
    BlankLevel,
    on_hand=counts,
    reserved=counts,
    quantity_per_unit=st.integers(min_value=1, max_value=12),  # BlankUsage refuses < 1
)
blank_lists = st.lists(levels, max_size=4)
buffers = st.integers(min_value=-5, max_value=60)
maxima = st.integers(min_value=-5, max_value=120)


def makeable(level: BlankLevel, units: int) -> bool:
    """Whether ``units`` of the variant can be made from this blank's free stock."""
    return units * level.quantity_per_unit <= level.on_hand - level.reserved


def reference(blanks: list[BlankLevel], *, buffer: int, maximum: int) -> int:
    """The largest q in 0..maximum with q + buffer units makeable from every blank, else 0."""
    if not blanks:
        return max(0, maximum)
    return max(
        (q for q in range(maximum + 1) if all(makeable(b, q + buffer) for b in blanks)),
        default=0,
    )


@PROPERTY
@given(blank_lists, buffers, maxima)
def test_matches_the_brute_force_reference(
    blanks: list[BlankLevel], buffer: int, maximum: int
) -> None:
    assert available_quantity(blanks, buffer=buffer, maximum=maximum) == reference(
        blanks, buffer=buffer, maximum=maximum
    )


@PROPERTY
@given(blank_lists, buffers, maxima)
def test_bounds(blanks: list[BlankLevel], buffer: int, maximum: int) -> None:
    """Never below 0, never above the cap; nothing listed when any blank has no free stock for
    one unit plus the buffer."""
    shown = available_quantity(blanks, buffer=buffer, maximum=maximum)
    assert 0 <= shown <= max(0, maximum)
    if blanks and not all(makeable(blank, 1 + buffer) for blank in blanks):
        assert shown == 0
    for blank in blanks:  # what is shown, plus the buffer, can really be made from each blank
        assert shown == 0 or makeable(blank, shown + buffer)


@pytest.mark.parametrize(
    ("field", "direction"),
    [("on_hand", 1), ("reserved", -1)],
    ids=["more on hand never lowers it", "more reserved never raises it"],
)
@PROPERTY
@given(
    blank_lists.filter(bool),
    st.data(),
    st.integers(min_value=1, max_value=50),
    buffers,
    maxima,
)
def test_one_blank_moves_it_one_way_only(
    field: str,
    direction: int,
    blanks: list[BlankLevel],
    data: st.DataObject,
    more: int,
    buffer: int,
    maximum: int,
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(blanks) - 1))
    changed = list(blanks)
    changed[index] = replace(blanks[index], **{field: getattr(blanks[index], field) + more})
    before = available_quantity(blanks, buffer=buffer, maximum=maximum)
    after = available_quantity(changed, buffer=buffer, maximum=maximum)
    assert (after - before) * direction >= 0


@PROPERTY
@given(blank_lists, buffers, st.integers(min_value=1, max_value=30), maxima)
def test_a_bigger_buffer_never_raises_it(
    blanks: list[BlankLevel], buffer: int, more: int, maximum: int
) -> None:
    before = available_quantity(blanks, buffer=buffer, maximum=maximum)
    after = available_quantity(blanks, buffer=buffer + more, maximum=maximum)
    assert after <= before
    assert after >= before - more  # and lowers it by at most the extra buffer


@PROPERTY
@given(blank_lists, buffers, maxima, st.integers(min_value=1, max_value=30))
def test_a_higher_cap_never_lowers_it(
    blanks: list[BlankLevel], buffer: int, maximum: int, more: int
) -> None:
    before = available_quantity(blanks, buffer=buffer, maximum=maximum)
    assert available_quantity(blanks, buffer=buffer, maximum=maximum + more) >= before


@PROPERTY
@given(blank_lists, levels, buffers, maxima)
def test_another_blank_never_raises_it(
    blanks: list[BlankLevel], extra: BlankLevel, buffer: int, maximum: int
) -> None:
    """A variant made of one more blank can show no more than without it (the minimum only
    shrinks), and its blanks' order does not matter."""
    if not blanks:
        return  # no blanks is untracked (the cap), a different rule
    before = available_quantity(blanks, buffer=buffer, maximum=maximum)
    assert available_quantity([*blanks, extra], buffer=buffer, maximum=maximum) <= before
    assert available_quantity(blanks[::-1], buffer=buffer, maximum=maximum) == before


@PROPERTY
@given(
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=0, max_value=500),
    st.booleans(),
    st.booleans(),
)
def test_line_reservation(quantity: int, fulfilled: int, paid: bool, cancelled: bool) -> None:
    """What a line holds back: max(0, current - fulfilled) while paid and not cancelled."""
    held = line_reservation(quantity=quantity, fulfilled=fulfilled, paid=paid, cancelled=cancelled)
    assert 0 <= held <= quantity
    assert held == (max(0, quantity - fulfilled) if paid and not cancelled else 0)


usages = st.dictionaries(
    st.integers(min_value=1, max_value=5),
    st.lists(
        st.builds(
            BlankUsage,
            blank_id=st.integers(min_value=1, max_value=4),
            quantity_per_unit=st.integers(min_value=1, max_value=5),
        ),
        max_size=3,
    ),
    max_size=5,
)
changes = st.dictionaries(
    st.integers(min_value=1, max_value=6), st.integers(min_value=-20, max_value=20), max_size=5
)


@PROPERTY
@given(usages, changes, changes)
def test_blank_deltas_add_up(
    usage: dict[int, list[BlankUsage]], first: dict[int, int], second: dict[int, int]
) -> None:
    """Per-blank changes are linear in the per-variant ones (two changes at once move the
    blanks as the two one after the other), and zeros are dropped."""
    both = {key: first.get(key, 0) + second.get(key, 0) for key in first.keys() | second.keys()}
    one, two = blank_deltas(first, usage), blank_deltas(second, usage)
    summed = {key: one.get(key, 0) + two.get(key, 0) for key in one.keys() | two.keys()}
    assert blank_deltas(both, usage) == {key: value for key, value in summed.items() if value}
    assert 0 not in one.values()
