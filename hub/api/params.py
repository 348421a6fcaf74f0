"""Bounds on the numbers the API takes, so what a column cannot hold is a 422 naming the field,
never an overflow inside the database driver (a 500).

Ids are ``BIGINT`` on PostgreSQL and ``INTEGER`` (64-bit) on SQLite; counts (quantities, stock,
buffers, ranks) are ``INTEGER``, 32-bit on PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, Field, field_validator

from hub.domain.errors import InvalidInput

MAX_ID = 2**63 - 1
MAX_COUNT = 2**31 - 1

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
_CURSOR = re.compile(r"[0-9]{1,19}")
NUL_FREE = r"^[^\x00]*$"  # a pattern for text that reaches the database


class ApiInput(BaseModel):
    """A request body. PostgreSQL text cannot hold NUL characters: refused here (422, naming
    the field) rather than by the driver."""

    @field_validator("*")  # after: nested inputs have checked their own fields already
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text may not contain NUL characters (\\u0000)")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def parse_cursor(cursor: str | None) -> int | None:
    """A keyset cursor is the id the previous page ended before, as our own ``next_cursor``."""
    if cursor is None or cursor == "":
        return None
    if _CURSOR.fullmatch(cursor) is None or not 1 <= int(cursor) <= MAX_ID:
        raise InvalidInput("cursor: pass the next_cursor of the previous page unchanged")
    return int(cursor)
