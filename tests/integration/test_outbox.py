"""The outbox on real databases: claims, release on broker failure, and a relay that survives
losing its LISTEN connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from hub.bootstrap import Container, bootstrap
from hub.settings import Settings
from sync.infrastructure.outbox import (
    OutboxMessage,
    Publisher,
    Relay,
    add_message,
    backlog,
    claim,
    listener,
    notify_channel,
)
from tests.conftest import DATABASE_URL, SECRET_KEY


def test_a_claimed_row_is_not_claimed_twice_and_a_failed_send_frees_it(
    container: Container,
) -> None:
    with container.engine.begin() as db:
        first = add_message(db, "inbound.process", "webhooks", {"event_id": 1})
        add_message(db, "inbound.process", "webhooks", {"event_id": 2})
    assert [m.id for m in claim(container.engine, ids=[first])] == [first]
    assert claim(container.engine, ids=[first]) == []  # leased

    def broken(_message: OutboxMessage) -> None:
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        Publisher(container.engine, broken).publish()
    sent: list[int] = []
    published = Publisher(container.engine, lambda m: sent.append(m.id)).publish()
    assert published == 1  # the unleased one at once; the first stays leased until its lease ends
    assert backlog(container.engine) == 1


@pytest.fixture
def postgres(postgres_schema: str) -> Iterator[Container]:
    built = bootstrap(
        Settings(database_url=DATABASE_URL, db_schema=postgres_schema, secret_keys=SECRET_KEY)
    )
    yield built
    with built.engine.begin() as db:
        db.execute(text("DELETE FROM outbox"))
    built.close()


def test_the_relay_survives_losing_its_listen_connection(postgres: Container) -> None:
    received: list[int] = []
    done = threading.Event()

    def send(message: OutboxMessage) -> None:
        received.append(message.id)
        done.set()

    wait = listener(
        postgres.engine,
        postgres.settings.db_schema,
        connect_timeout=postgres.settings.db_connect_timeout_seconds,
    )
    relay = Relay(Publisher(postgres.engine, send), wait_for_work=wait, poll_seconds=0.05)
    relay.start()
    try:
        time.sleep(0.3)  # the relay is listening
        with postgres.engine.begin() as db:
            db.execute(  # only our own listener: the server is shared
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = :listen AND pid <> pg_backend_pid()"
                ),
                {"listen": f"LISTEN {notify_channel(postgres.settings.db_schema)}"},
            )
        time.sleep(0.3)
        with postgres.engine.begin() as db:
            message_id = add_message(db, "inbound.process", "webhooks", {"event_id": 9})
        assert done.wait(10), "the relay stopped publishing"
        assert received == [message_id]
    finally:
        relay.stop()
