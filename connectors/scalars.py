"""Scalar parsing shared by every connector's mappers: money exact, never through a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Amounts from 10**14 up (a hundred trillion in any currency) are refused: far beyond any
# order or price, and it keeps every sum and quantize a mapper does exact in the default
# 28-digit context (``1e999999999`` is a finite Decimal that no quantize or sum survives).
MAX_AMOUNT = Decimal(10) ** 14


class PayloadError(ValueError):
    """A marketplace payload lacks a documented field or carries a value of the wrong type."""


def check_amount(
    value: Decimal, *, what: str = "amount", error: type[PayloadError] = PayloadError
) -> Decimal:
    """``value`` if it is a finite amount below ``MAX_AMOUNT`` (either sign), else ``error``."""
    if not value.is_finite():
        raise error(f"{what}: {value!r} is not a finite amount")
    if value.copy_abs() >= MAX_AMOUNT:  # copy_abs: no context, so no Overflow for 1E+999999999
        raise error(f"{what}: {value} is out of range for an amount (at most 14 integer digits)")
    return value


def exact_money(
    value: Any, *, what: str = "amount", error: type[PayloadError] = PayloadError
) -> Decimal:
    """A Decimal from a decimal string (or an integer); floats and booleans are refused, and
    so are NaN, infinities and amounts out of range (``check_amount``)."""
    if isinstance(value, bool | float):
        raise error(f"{what}: money must be a decimal string, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)  # exact, and no str() of a 5000-digit integer
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as failure:
            raise error(f"{what}: {value!r} is not a decimal amount") from failure
    else:
        raise error(f"{what}: money must be a decimal string, got {value!r}")
    return check_amount(result, what=what, error=error)
