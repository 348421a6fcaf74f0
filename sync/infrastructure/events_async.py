"""The webhook hot path on PostgreSQL: one statement, one round trip, no threadpool hop.

The event and (only if it is new and usable) its outbox row are inserted by one statement with
``ON CONFLICT DO NOTHING … RETURNING``. No NOTIFY here: PostgreSQL serialises the commits of
notifying transactions on one lock, which capped ingress; the relay's 50 ms poll (it keeps
draining while it finds rows) is the wake-up on this path.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

from hub.infrastructure.db import postgres_connect_args
from sync.infrastructure.events import (
    PROCESS_ACTOR,
    PROCESS_QUEUE,
    IncomingEvent,
    StoredEvent,
)

STORE_EVENT = """
WITH shop AS (
  SELECT id FROM shops
  WHERE %(shop_id)s::bigint IS NULL AND marketplace = %(marketplace)s AND external_id = %(ref)s
  UNION ALL SELECT %(shop_id)s::bigint WHERE %(shop_id)s::bigint IS NOT NULL
),
ev AS (
  INSERT INTO inbound_events
    (marketplace, event_key, shop_id, topic, resource_id, body, status, reason, attempts,
     received_at)
  SELECT %(marketplace)s, %(event_key)s, (SELECT id FROM shop LIMIT 1), %(topic)s,
         %(resource_id)s, %(body)s,
         CASE WHEN %(forced_reason)s::text IS NOT NULL THEN 'rejected'
              WHEN (SELECT id FROM shop LIMIT 1) IS NULL THEN 'rejected'
              ELSE 'received' END,
         CASE WHEN %(forced_reason)s::text IS NOT NULL THEN %(forced_reason)s::text
              WHEN (SELECT id FROM shop LIMIT 1) IS NULL THEN %(unknown_reason)s::text
              ELSE NULL END,
         0, now()
  ON CONFLICT (marketplace, event_key) DO NOTHING
  RETURNING id, status
),
ob AS (
  INSERT INTO outbox (actor, queue, payload, delay_ms, created_at)
  SELECT %(actor)s, %(queue)s, jsonb_build_object('event_id', id), 0, now()
  FROM ev WHERE status = 'received'
  RETURNING id
)
SELECT (SELECT id FROM ev) AS event_id, (SELECT status FROM ev) AS status,
       (SELECT count(*) FROM ob) AS queued
"""


class AsyncEventStore:
    def __init__(
        self,
        database_url: str,
        *,
        schema: str | None,
        max_size: int,
        connect_timeout_seconds: int,
        pool_timeout_seconds: float,
    ) -> None:
        """The ingress pool fails fast while PostgreSQL is away (so the webhook answers 503 and
        the marketplace redelivers) and hands out no connection the outage killed (``check``)."""
        url = make_url(database_url).set(drivername="postgresql")
        options = f"-c search_path={schema}" if schema else None
        self._pool = AsyncConnectionPool(
            url.render_as_string(hide_password=False),
            min_size=2,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                **postgres_connect_args(connect_timeout_seconds),
                **({"options": options} if options else {}),
            },
            timeout=pool_timeout_seconds,
            check=AsyncConnectionPool.check_connection,
            open=False,
        )

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def store(self, event: IncomingEvent) -> StoredEvent:
        params: dict[str, Any] = {
            "shop_id": event.shop_id,
            "marketplace": event.marketplace,
            "ref": event.shop_reference,
            "event_key": event.event_key,
            "topic": event.topic,
            "resource_id": event.resource_id,
            "body": event.body,
            "forced_reason": event.rejected_reason,
            "unknown_reason": f"unknown shop {event.shop_reference!r}",
            "actor": PROCESS_ACTOR,
            "queue": PROCESS_QUEUE,
        }
        async with self._pool.connection() as connection:
            cursor = await connection.execute(STORE_EVENT, params)
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            return StoredEvent(None, None)
        return StoredEvent(int(row[0]), str(row[1]))
