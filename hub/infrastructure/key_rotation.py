"""Every encrypted value in the database re-encrypted under the newest credential key.

``hub secrets rotate`` calls ``rotate_all``; ``--check`` calls ``check_all``. The encrypted
columns are listed in ``ENCRYPTED_COLUMNS``: a new one must be added there.

Rows are read in batches of ids on a read-only connection. Each row that is not under the
newest key is then re-read and rewritten in its own short transaction, under the lock its
writers take: a shop's credentials under ``shop-credentials:{id}``, the lock of the token
refresh (``sync.infrastructure.credentials``), so a rotation never overwrites an Etsy refresh
token that was rotated meanwhile, and one never loses a rotation. The write is also a
compare-and-set on the old token: a writer that does not take the lock (an operator replacing
credentials through the API) makes the row be read again, never overwritten. Rows already
under the newest key are left alone, so a second run rewrites nothing.

Fernet tokens carry no key id: a token is under the newest key when the newest key alone
decrypts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Column, Engine, Table, select, update

from hub.infrastructure.crypto import CredentialKeyError
from hub.infrastructure.db import read_only
from hub.infrastructure.tables import ShopAuthorizationRow, ShopRow, table_of
from hub.infrastructure.uow import SqlUnitOfWork

DEFAULT_BATCH_SIZE = 200
MAX_TRIES_PER_ROW = 5  # compare-and-set lost to writers without the lock this often: give up


class RotatingCipher(Protocol):
    def decrypt(self, token: str) -> dict[str, Any]: ...
    def is_current(self, token: str) -> bool: ...
    def rotate(self, token: str) -> str: ...


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column_name: str
    lock_name: str | None  # "{id}" is the row's id; None: nothing but this command rewrites it

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column_name}"

    @property
    def column(self) -> Column[Any]:
        return self.table.c[self.column_name]


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn(table_of(ShopRow), "credentials", "shop-credentials:{id}"),
    # The PKCE verifier of an authorization in flight: written once when it starts.
    EncryptedColumn(table_of(ShopAuthorizationRow), "secrets", None),
)


@dataclass
class ColumnReport:
    """What one column holds (``check``) or what a rotation did to it."""

    name: str
    encrypted: int = 0  # rows holding a value
    current: int = 0  # already under the newest key
    rotated: int = 0  # re-encrypted under the newest key by this run
    stale: int = 0  # under an older key still (``check``; a rotation leaves none readable)
    unreadable: int = 0  # no configured key decrypts it
    unreadable_ids: list[int] = field(default_factory=list)
    busy: int = 0  # lost the compare-and-set every time: run again

    @property
    def not_current(self) -> int:
        return self.stale + self.unreadable + self.busy

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.name,
            "encrypted": self.encrypted,
            "current": self.current,
            "rotated": self.rotated,
            "stale": self.stale,
            "unreadable": self.unreadable,
            "unreadable_ids": self.unreadable_ids[:20],
            "busy": self.busy,
        }


def _batches(engine: Engine, target: EncryptedColumn, size: int) -> Iterator[list[Any]]:
    table, column = target.table, target.column
    last = 0
    while True:
        with read_only(engine).connect() as db:
            rows = list(
                db.execute(
                    select(table.c.id, column)
                    .where(column.is_not(None), table.c.id > last)
                    .order_by(table.c.id)
                    .limit(size)
                )
            )
        if not rows:
            return
        yield rows
        last = rows[-1].id


def check_all(
    engine: Engine, cipher: RotatingCipher, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[ColumnReport]:
    """How many encrypted values each column holds under the newest key, older keys, or none."""
    reports = []
    for target in ENCRYPTED_COLUMNS:
        report = ColumnReport(target.name)
        for rows in _batches(engine, target, batch_size):
            for row in rows:
                report.encrypted += 1
                token = row[1]
                if cipher.is_current(token):
                    report.current += 1
                elif _readable(cipher, token):
                    report.stale += 1
                else:
                    report.unreadable += 1
                    report.unreadable_ids.append(row.id)
        reports.append(report)
    return reports


def rotate_all(
    engine: Engine,
    cipher: RotatingCipher,
    begin: Callable[[], SqlUnitOfWork],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ColumnReport]:
    """Re-encrypt every value not under the newest key; ``begin`` opens a unit of work."""
    reports = []
    for target in ENCRYPTED_COLUMNS:
        report = ColumnReport(target.name)
        for rows in _batches(engine, target, batch_size):
            for row in rows:
                report.encrypted += 1
                if cipher.is_current(row[1]):
                    report.current += 1
                    continue
                _rotate_row(target, row.id, cipher, begin, report)
        reports.append(report)
    return reports


def _rotate_row(
    target: EncryptedColumn,
    row_id: int,
    cipher: RotatingCipher,
    begin: Callable[[], SqlUnitOfWork],
    report: ColumnReport,
) -> None:
    table, column = target.table, target.column
    for _ in range(MAX_TRIES_PER_ROW):
        with begin() as uow:
            if target.lock_name is not None:
                uow.lock(target.lock_name.format(id=row_id))
            token = uow.connection.execute(
                select(column).where(table.c.id == row_id)
            ).scalar_one_or_none()
            if token is None:  # deleted or emptied meanwhile: nothing left to protect
                report.encrypted -= 1
                return
            if cipher.is_current(token):  # rewritten meanwhile, under the newest key
                report.current += 1
                return
            try:
                rotated = cipher.rotate(token)
            except CredentialKeyError:
                report.unreadable += 1
                report.unreadable_ids.append(row_id)
                return
            written = uow.connection.execute(
                update(table)
                .where(table.c.id == row_id, column == token)
                .values({target.column_name: rotated})
            ).rowcount
            if written:
                uow.commit()
                report.rotated += 1
                return
    report.busy += 1


def _readable(cipher: RotatingCipher, token: str) -> bool:
    try:
        cipher.decrypt(token)
    except CredentialKeyError:
        return False
    return True
