"""The sync engine's state, in the same database as the orders: the database is the truth for
sync state too (inbound events, operations and their attempts, cursors, the outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.infrastructure.db import Base, UTCDateTime
from hub.infrastructure.tables import Id, OutboxRow, SyncOperationRow

__all__ = [
    "InboundEventRow",
    "OutboxRow",
    "SyncAttemptRow",
    "SyncCursorRow",
    "SyncOperationRow",
]  # the outbox and operations live with the core: its transactions write them


class InboundEventRow(Base):
    """One webhook delivery, stored once per (marketplace, event key) and handled once."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("marketplace", "event_key"),
        Index("ix_inbound_events_status_received_at", "status", "received_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(255))
    shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", ondelete="SET NULL"), nullable=True, index=True
    )
    topic: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))  # received / handled / rejected
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SyncAttemptRow(Base):
    """One real remote call: waiting for a rate limit or a lock is not an attempt."""

    __tablename__ = "sync_attempts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    operation_id: Mapped[int] = mapped_column(
        ForeignKey("sync_operations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # succeeded / failed
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SyncCursorRow(Base):
    """How far a (shop, stream) pull has committed; the next pull starts an overlap before it."""

    __tablename__ = "sync_cursors"
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
