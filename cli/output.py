"""What every `hub` command shares: the container, JSON and tables, and failures that say what
failed, for which shop or job, and what to do.

Exit codes: 0 success; 1 a failure (not found, refused, a failed job, the database not ready);
2 usage (Typer's own errors, and option values or combinations that make no sense).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError

from hub.bootstrap import Container
from hub.domain.errors import DomainError
from hub.domain.sellers import Principal
from hub.settings import Settings

ADMIN = Principal(seller_id=None, is_admin=True)
MAX_CELL = 60
RELAY_NOTE = "a running relay publishes it (`hub run`, or `hub relay` with `hub worker`)"


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print JSON instead of a table.")


def fail(message: str, code: int = 1) -> NoReturn:
    """Say what failed, for what, and what to do, on stderr; then exit ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def usage(message: str) -> NoReturn:
    """An option value or combination that makes no sense: exit 2, like Typer's own errors."""
    fail(f"usage: {message}", 2)


def load_settings() -> Settings:
    """``HUB_*`` settings, or exit 1 naming the variable that is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            (f"HUB_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "") + e["msg"]
            for e in error.errors()
        )
        fail(f"configuration invalid: {problems}; fix the HUB_* environment variables")


@contextmanager
def hub() -> Iterator[Container]:
    """The container on the ``HUB_*`` settings, closed afterwards. Database errors that mean
    "not set up" (missing tables, nothing answering) exit 1 with what to do."""
    from hub.bootstrap import bootstrap
    from hub.infrastructure.crypto import CredentialKeyError

    try:
        container = bootstrap(load_settings())
    except CredentialKeyError as error:
        fail(str(error))
    try:
        yield container
    except DomainError as error:  # a command that did not say more about it
        fail(error.message)
    except (OperationalError, ProgrammingError) as error:
        detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        fail(
            f"database error: {detail}; run `hub db upgrade` if tables are missing, and check "
            "HUB_DATABASE_URL (or HUB_DATA_DIR) points at the hub's database"
        )
    finally:
        container.close()


@contextmanager
def explain(what: str, hint: str | Callable[[DomainError], str] = "") -> Iterator[None]:
    """A domain error becomes exit 1 with ``{what}: {its message}; {hint}``."""
    try:
        yield
    except DomainError as error:
        advice = hint(error) if callable(hint) else hint
        fail(f"{what}: {error.message}" + (f"; {advice}" if advice else ""))


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    """Plain aligned columns; ``empty`` when there are no rows."""
    if not rows:
        typer.echo(empty)
        return
    grid = [list(columns)] + [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    for line in grid:
        padded = (text.ljust(width) for text, width in zip(line, widths, strict=True))
        typer.echo("  ".join(padded).rstrip())


def print_fields(fields: Mapping[str, Any]) -> None:
    """One ``name: value`` line per field (a single record)."""
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        shown = json.dumps(jsonable(value)) if isinstance(value, dict | list) else cell(value)
        typer.echo(f"{name.ljust(width)}  {shown}")


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``; ``-`` for None."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def parse_when(value: str, option: str) -> datetime:
    """An ISO 8601 time (``2026-11-01``, ``2026-11-01T12:00:00+01:00``); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        usage(f"{option} {value!r} is not an ISO 8601 time, e.g. 2026-11-01T12:00:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextmanager
def progress(total: int, label: str, *, threshold: int = 20) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr for long work (``total`` over ``threshold``); a step callback."""
    if total <= threshold:
        yield lambda: None
        return
    with typer.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield lambda: bar.update(1)
