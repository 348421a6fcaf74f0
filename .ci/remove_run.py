"""Remove what one CI demo run left on the shared services: its schema, its Redis keys (by
prefix, never FLUSHDB) and its queues."""

from __future__ import annotations

import os
import sys

import pika  # type: ignore[import-untyped]
import psycopg
from redis import Redis

from sync.worker.broker import QUEUES


def main(run_id: str) -> None:
    database = os.environ["HUB_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{run_id}" CASCADE')
    redis = Redis.from_url(os.environ["HUB_CACHE_URL"])
    keys = list(redis.scan_iter(match=f"{run_id}:*", count=1000))
    for start in range(0, len(keys), 500):
        redis.delete(*keys[start : start + 500])
    broker = pika.BlockingConnection(pika.URLParameters(os.environ["HUB_BROKER_URL"]))
    channel = broker.channel()
    for queue in QUEUES:
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(queue=f"{run_id}.{queue}{suffix}")
    broker.close()
    print(f"ci: removed schema, {len(keys)} Redis keys and the queues of {run_id}")


if __name__ == "__main__":
    main(sys.argv[1])
