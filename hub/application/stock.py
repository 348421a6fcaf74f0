"""Blanks: the business's stock. Only the operator changes on-hand counts."""

from __future__ import annotations

from hub.domain.catalog import Blank
from hub.domain.errors import Forbidden, InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import QUANTITY_KINDS

MAX_ON_HAND = 2**31 - 1  # an INTEGER column on PostgreSQL


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("blanks and on-hand stock are managed with the admin key")


def create_blank(
    uow: UnitOfWork, principal: Principal, *, code: str, name: str, on_hand: int = 0
) -> Blank:
    _require_admin(principal)
    if not 0 <= on_hand <= MAX_ON_HAND:
        raise InvalidInput(f"blank {code!r}: on_hand must be between 0 and {MAX_ON_HAND}")
    if not code.strip():
        raise InvalidInput("a blank needs a code")
    return uow.stock.add_blank(Blank(id=None, code=code.strip(), name=name, on_hand=on_hand))


def set_on_hand(
    uow: UnitOfWork,
    principal: Principal,
    blank_id: int,
    *,
    on_hand: int | None = None,
    delta: int | None = None,
) -> Blank:
    """Set an absolute count (a stock take) or add a delta (a delivery); exactly one of them."""
    _require_admin(principal)
    if (on_hand is None) == (delta is None):
        raise InvalidInput("give exactly one of on_hand (absolute) or delta (adjustment)")
    blank = uow.stock.get_blank(blank_id)
    if blank is None:
        raise NotFound(f"blank {blank_id} does not exist")
    if delta is not None:
        target = blank.on_hand + delta
    else:
        assert on_hand is not None
        target = on_hand
    if target < 0:
        raise InvalidInput(f"blank {blank_id}: on_hand would become {target}; it cannot go below 0")
    if target > MAX_ON_HAND:
        raise InvalidInput(f"blank {blank_id}: on_hand would become {target}, over {MAX_ON_HAND}")
    if target != blank.on_hand:
        uow.stock.set_on_hand(blank_id, target)
        uow.bindings.bump(QUANTITY_KINDS, blank_ids=[blank_id])
    fresh = uow.stock.get_blank(blank_id)
    assert fresh is not None
    return fresh


def get_blank(uow: UnitOfWork, principal: Principal, blank_id: int) -> Blank:
    _require_admin(principal)
    blank = uow.stock.get_blank(blank_id)
    if blank is None:
        raise NotFound(f"blank {blank_id} does not exist")
    return blank
