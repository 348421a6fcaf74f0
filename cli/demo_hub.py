"""The hub as the demo runs it: what ``hub run`` runs (API, outbox relay, worker, scheduler), in
threads of this process, on whatever settings it is given, and a small client of its API.

The API runs under uvicorn with its lifespan, so it builds its adapters as ``hub serve`` does
(on PostgreSQL: the async event store of webhook ingress); webhooks reach it over HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import httpx
import uvicorn
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import CurrentMessage, Middleware

from hub.api.app import create_app
from hub.infrastructure.migrations import upgrade
from hub.settings import Settings
from sync.application.orders_in import PULL_ACTOR, PULL_QUEUE
from sync.infrastructure.outbox import add_message
from sync.worker.engine import SyncEngine

STARTUP_SECONDS = 20.0


class PullWatch(Middleware):
    """Follows ``orders.pull`` scans through the broker: a scan that continues (more pages, a
    rate-limit wait) sends its next message while it runs, so a scan is done when the messages
    it sent have all been processed. Message ids survive a delayed message's hop through the
    delay queue and a Dramatiq retry, so each counts once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scan_of: dict[str, str] = {}  # message id -> id of its scan's first message
        self._pending: dict[str, tuple[int, float]] = {}  # id -> (shop, enqueued at)
        self._processed: set[str] = set()

    def before_enqueue(self, broker: Broker, message: dramatiq.Message[Any], delay: int) -> None:
        if message.actor_name != PULL_ACTOR:
            return
        sender = CurrentMessage.get_current_message()
        with self._lock:
            first = message.message_id
            if sender is not None and sender.actor_name == PULL_ACTOR:
                first = self._scan_of.get(sender.message_id, first)
            self._scan_of.setdefault(message.message_id, first)
            shop = int(message.kwargs.get("shop_id") or 0)
            self._pending.setdefault(message.message_id, (shop, time.monotonic()))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self._done(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._done(message)

    def _done(self, message: MessageProxy) -> None:
        if message.actor_name == PULL_ACTOR:
            with self._lock:
                self._pending.pop(message.message_id, None)
                self._processed.add(message.message_id)

    def scan_done(self, message_id: int) -> bool:
        """The scan started by message ``message_id`` has run to its end."""
        first = str(message_id)
        with self._lock:
            return first in self._processed and not any(
                self._scan_of.get(pending) == first for pending in self._pending
            )

    def pending(self) -> dict[str, tuple[int, float]]:
        """Pull messages not processed yet: id -> (shop, seconds since enqueued)."""
        now = time.monotonic()
        with self._lock:
            return {key: (shop, now - at) for key, (shop, at) in self._pending.items()}


class InProcessHub:
    """API, relay, worker and scheduler of one hub, on ``settings``, in this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = SyncEngine(settings=settings)
        self.container = self.engine.container
        self.pulls = PullWatch()
        self.engine.broker.add_middleware(self.pulls)
        self.worker_restarts = 0

    @contextmanager
    def running(self, host: str, port: int) -> Iterator[str]:
        """Migrate, re-send what an earlier run left, start everything; yields the API's URL."""
        engine = self.engine
        upgrade(self.container.engine, schema=self.settings.db_schema)
        try:
            engine.recover()
            engine.start_relay()
            engine.start_worker()
            engine.start_scheduler()
            with serve_api(create_app(container=self.container), host, port) as url:
                yield url
        finally:
            engine.stop()
            self.container.close()

    def restart_worker(self) -> None:
        """Stop the worker (running actors finish, queued messages stay), start a new one and
        re-send whatever is unhandled, as ``hub run`` does when it starts."""
        worker = self.engine.worker
        if worker is not None:
            worker.stop()
        self.engine.start_worker()
        self.engine.recover()
        self.worker_restarts += 1

    def request_pulls(self, shop_ids: list[int]) -> dict[int, int]:
        """One reconciliation pull per shop (the scheduler's message); the message ids."""
        with self.container.engine.begin() as db:
            sent = {
                shop_id: add_message(db, PULL_ACTOR, PULL_QUEUE, {"shop_id": shop_id})
                for shop_id in shop_ids
            }
        self.engine.runtime.publisher.publish(ids=list(sent.values()))
        return sent


@contextmanager
def serve_api(app: Any, host: str, port: int) -> Iterator[str]:
    """The API under uvicorn in a thread, lifespan on; yields its base URL once it listens."""
    config = uvicorn.Config(  # its logs go where the demo's go (log_config=None)
        app, host=host, port=port, lifespan="on", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {host}:{port} (port in use?)")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ApiError(RuntimeError):
    pass


class Api:
    """The hub's HTTP API with one key; errors raise with the API's own message."""

    def __init__(self, base_url: str, key: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.client.request(method, path, **kwargs)
        if answer.status_code >= 400:
            raise ApiError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def close(self) -> None:
        self.client.close()
