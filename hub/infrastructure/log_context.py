"""The ids a log line is about (shop, job, event), bound once and carried by every record.

``bind(shop_id=..., job_id=...)`` is a context manager over a ``ContextVar``: each thread and each
asyncio task sees its own ids, nested binds add to the outer ones, and leaving restores them.
``ContextFilter`` copies the bound ids onto every record a handler formats, so the JSON formatter
writes them as fields without any caller passing ``extra=``. A field the caller passed in
``extra`` wins over the bound one.

A value that costs something to find (the shop of a job, read from the database) is bound as
``Deferred(find)``: it is found when the first record inside the block is written, and never
when nothing is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

FIELDS = ("shop_id", "job_id", "event_id")  # the ids operators search logs by

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_BOUND: ContextVar[Mapping[str, Any]] = ContextVar("hub_log_context", default=_EMPTY)


class Deferred:
    """A bound value found on first use (once); ``None`` when finding it failed."""

    _UNSET, _FINDING, _FOUND = range(3)

    def __init__(self, find: Callable[[], Any]) -> None:
        self._find = find
        self._state = self._UNSET
        self._value: Any = None

    def get(self) -> Any:
        if self._state == self._UNSET:
            self._state = self._FINDING  # a record logged while finding it goes without
            try:
                self._value = self._find()
            except Exception:
                self._value = None
            self._state = self._FOUND
        return self._value if self._state == self._FOUND else None


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Carry ``fields`` (``None`` values left out) on every record logged inside the block."""
    added = {name: value for name, value in fields.items() if value is not None}
    token = _BOUND.set(MappingProxyType({**_BOUND.get(), **added}))
    try:
        yield
    finally:
        _BOUND.reset(token)


def current() -> dict[str, Any]:
    """The ids bound here and now (deferred ones found)."""
    found = {name: _resolved(value) for name, value in _BOUND.get().items()}
    return {name: value for name, value in found.items() if value is not None}


def _resolved(value: Any) -> Any:
    return value.get() if isinstance(value, Deferred) else value


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, bound in _BOUND.get().items():
            if name not in record.__dict__:
                value = _resolved(bound)
                if value is not None:
                    setattr(record, name, value)
        return True


def install(*handlers: logging.Handler) -> None:
    """Add the filter to ``handlers`` (default: the root logger's), once per handler.

    On handlers, not loggers: a logger's filters see only records logged on that very logger,
    a handler's see every record that reaches it, whichever logger it came from.
    """
    for handler in handlers or tuple(logging.getLogger().handlers):
        if not any(isinstance(existing, ContextFilter) for existing in handler.filters):
            handler.addFilter(ContextFilter())
