"""RabbitMQ plumbing for the resilience tests: reachability, per-run queue names, `hub worker`
subprocesses, a TCP proxy that can drop every connection at once, and a targeted close of this
test's connections on the broker side.

Everything here is scoped to one test run: queues carry a unique prefix and are deleted at the
end; connections are closed only when they are ours (matched by port), never the whole broker's,
because the server is shared with other runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sync.worker.broker import QUEUES
from tests.conftest import RUN_ID, service_unavailable

RABBITMQ_URL = os.environ.get("HUB_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Reachability and queues
# ---------------------------------------------------------------------------------------------


def _parameters(url: str):  # type: ignore[no-untyped-def]
    import pika

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = 3
    parameters.blocked_connection_timeout = 5
    parameters.connection_attempts = 1
    return parameters


def require_rabbitmq(url: str = RABBITMQ_URL) -> str:
    """The URL if RabbitMQ answers; otherwise skip (or fail under HUB_TEST_REQUIRE_SERVICES=1)."""
    try:
        import pika

        connection = pika.BlockingConnection(_parameters(url))
        connection.close()
    except Exception as error:  # pika's connection errors often have an empty str()
        service_unavailable(f"RabbitMQ at {url}", error if str(error) else OSError(repr(error)))
    return url


def unique_queue_prefix() -> str:
    return f"hubtest.{RUN_ID}.{uuid.uuid4().hex[:8]}."


def queue_names(prefix: str) -> list[str]:
    """Every queue Dramatiq may declare for our prefix: canonical, delayed (.DQ), dead (.XQ)."""
    return [f"{prefix}{q}{suffix}" for q in QUEUES for suffix in ("", ".DQ", ".XQ")]


def queue_stats(url: str, name: str) -> tuple[int, int] | None:
    """(messages ready, consumers) of a queue, or None while it does not exist."""
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(_parameters(url))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return None
            raise
        return ok.method.message_count, ok.method.consumer_count
    finally:
        if connection.is_open:
            connection.close()


def dead_letters(url: str, prefix: str) -> dict[str, int]:
    """Messages in our dead-letter queues (.XQ), by queue; empty when nothing died."""
    found: dict[str, int] = {}
    for name in queue_names(prefix):
        if name.endswith(".XQ"):
            stats = queue_stats(url, name)
            if stats and stats[0]:
                found[name] = stats[0]
    return found


def delete_queues(url: str, prefix: str) -> None:
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(_parameters(url))
    try:
        channel = connection.channel()
        for name in queue_names(prefix):
            try:
                channel.queue_delete(queue=name)
            except pika.exceptions.ChannelClosed:
                channel = connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, detail: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached in {seconds:.0f}s\n{detail()}")


# ---------------------------------------------------------------------------------------------
# `hub worker` / `hub relay` as real processes
# ---------------------------------------------------------------------------------------------


class HubProcess:
    """One `hub <command>` process with its own log file; killed (not asked) when told to."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", command],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is acked, sockets die with the process."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def hub_env(values: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any HUB_* setting, plus exactly ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------------------------------
# A TCP proxy in front of RabbitMQ: drop our connections without touching anyone else's
# ---------------------------------------------------------------------------------------------


class BrokerProxy:
    """Forwards 127.0.0.1:<port> to RabbitMQ. ``drop()`` resets every connection through it
    (client and broker both see the TCP connection die); ``outage()`` also refuses new ones for
    a while. ``upstream_ports()`` are the local ports RabbitMQ sees as our peers."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = parts
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._refusing = threading.Event()
        self._closed = threading.Event()
        self.dropped = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, name="broker-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        netloc = self._upstream_url.netloc.rsplit("@", 1)
        credentials = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit(self._upstream_url._replace(netloc=f"{credentials}127.0.0.1:{self.port}"))

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refusing.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=3)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="broker-proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                _close_quietly(sock)
            with self._lock:
                self._pairs = [p for p in self._pairs if source not in p]

    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def upstream_ports(self) -> list[int]:
        ports = []
        with self._lock:
            for _, upstream in self._pairs:
                with suppress(OSError):
                    ports.append(upstream.getsockname()[1])
        return ports

    def drop(self) -> int:
        """Reset every connection through the proxy at once; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        self.dropped += len(pairs)
        return len(pairs)

    @contextmanager
    def outage(self) -> Iterator[int]:
        """Drop everything and refuse new connections until the block ends."""
        self._refusing.set()
        try:
            yield self.drop()
        finally:
            self._refusing.clear()

    def close(self) -> None:
        self._closed.set()
        _close_quietly(self._listener)
        self.drop()
        self._thread.join(2)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets an RST, like a dead network path. SHUT_RD first
    wakes the pump thread blocked in recv() without sending anything to the peer."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    with suppress(OSError):
        sock.close()


def _close_quietly(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


# ---------------------------------------------------------------------------------------------
# Broker-side close of exactly our connections (rabbitmqctl, as root on the broker's host)
# ---------------------------------------------------------------------------------------------


def rabbitmqctl_usable() -> str | None:
    """None if `rabbitmqctl` can talk to the node here; otherwise why not."""
    path = shutil.which("rabbitmqctl")
    if path is None:
        return "rabbitmqctl is not installed here"
    try:
        result = subprocess.run([path, "eval", "ok."], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"rabbitmqctl failed: {error}"
    if result.returncode != 0:
        return f"rabbitmqctl cannot reach the node: {(result.stderr or result.stdout).strip()}"
    return None


def close_connections_from_ports(ports: list[int], reason: str = "hub resilience test") -> int:
    """RabbitMQ closes (CONNECTION_FORCED) every connection whose peer is 127.0.0.1:<port> for
    one of ``ports``: ours only, unlike `close_all_connections`, which would hit other runs on
    the shared server. One `rabbitmqctl eval`, so all go at once."""
    if not ports:
        return 0
    expression = (
        f"Ports = {sorted(set(ports))!r}, "
        "Ours = fun(Pid) -> try "
        "[{peer_host, H}, {peer_port, P}] = "
        "rabbit_networking:connection_info(Pid, [peer_host, peer_port]), "
        'inet:ntoa(H) =:= "127.0.0.1" andalso lists:member(P, Ports) '
        "catch _:_ -> false end end, "
        f"Closed = [begin rabbit_networking:close_connection(Pid, {reason!r}), Pid end "
        "|| Pid <- rabbit_networking:connections(), Ours(Pid)], "
        "length(Closed)."
    ).replace("'", '"')
    result = subprocess.run(
        ["rabbitmqctl", "eval", expression], capture_output=True, text=True, timeout=30, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])
