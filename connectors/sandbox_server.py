"""Serve an ASGI app on a real local port from a background thread.

Our connectors talk through a synchronous ``httpx.Client``. httpx's ``ASGITransport`` only
works with ``AsyncClient``, so a sandbox cannot be mounted in-process under a sync client;
instead it is served over real TCP by uvicorn in a daemon thread, which also exercises the
same connection handling (keep-alive, timeouts, status lines) the connector meets in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.005

ASGIApp = Callable[..., Any]


@contextmanager
def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, lifespan: Literal["on", "off"] = "off"
) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block exits; yield its base URL.

    ``port=0`` lets the OS pick a free port, so parallel test workers never collide. The
    lifespan protocol is off by default (sandboxes hold their state in plain Python objects);
    ``lifespan="on"`` serves an app that sets itself up at start, such as the hub's API.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    try:
        bound_port = _wait_until_started(server, thread)
        yield _base_url(host, bound_port)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_SECONDS)


def _wait_until_started(server: Any, thread: threading.Thread) -> int:
    """Block until uvicorn listens, then return the port it actually bound."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server stopped during startup (port in use?)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the sandbox server did not start in {STARTUP_TIMEOUT_SECONDS}s")
        time.sleep(POLL_SECONDS)
    sockets = [sock for listener in server.servers for sock in listener.sockets]
    return int(sockets[0].getsockname()[1])


def _base_url(host: str, port: int) -> str:
    """``http://host:port``, bracketing IPv6 literals."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
