"""Scalar parsing shared by every connector's mappers: money exact, never through a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


class PayloadError(ValueError):
    """A marketplace payload lacks a documented field or carries a value of the wrong type."""


def exact_money(
    value: Any, *, what: str = "amount", error: type[PayloadError] = PayloadError
) -> Decimal:
    """A Decimal from a decimal string (or an integer); floats and booleans are refused."""
    if isinstance(value, bool | float):
        raise error(f"{what}: money must be a decimal string, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str | int):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as failure:
            raise error(f"{what}: {value!r} is not a decimal amount") from failure
    else:
        raise error(f"{what}: money must be a decimal string, got {value!r}")
    if not result.is_finite():
        raise error(f"{what}: {value!r} is not a finite amount")
    return result
