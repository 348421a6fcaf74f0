"""A loopback TCP proxy that can cut a service away from the hub and give it back.

``TcpProxy(("127.0.0.1", 5432))`` listens on a free loopback port and forwards every connection
to the target, one thread per direction. ``cut()`` resets every open connection both ways (the
client and the service each see their TCP connection die) and then, until ``restore()``:

- ``"refuse"`` (the common outage: the service is down or restarting): the listening socket is
  closed, so a new connection is refused by the kernel (ECONNREFUSED), exactly as a stopped
  server's port;
- ``"blackhole"`` (a network partition, a hung server): new connections are accepted and then
  never answered, so only the client's own connect/read timeouts get it out.

``restore()`` listens again on the same port (chosen below the kernel's ephemeral range, so no
outgoing connection can take it meanwhile) and resets what the black hole held. Only the
standard library; every thread is a daemon and ``close()`` joins them.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

CutMode = Literal["refuse", "blackhole"]
ACCEPT_POLL_SECONDS = 0.1
CHUNK = 65536
REBIND_SECONDS = 5.0


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pick_port(host: str = "127.0.0.1") -> int:
    """A free port below the ephemeral range: the kernel never hands it to an outgoing
    connection, so a proxy can close its listener during a cut and bind the port again."""
    low = max(_ephemeral_low(), 2048)
    for _ in range(200):
        port = random.randint(max(1025, low - 20000), low - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError("no free port below the ephemeral range")


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST; the shutdown first wakes a thread
    blocked on this socket (closing the descriptor alone would not)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards ``host:port`` (loopback, a free port by default) to ``target``."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "tcp-proxy",
        connect_timeout: float = 3.0,
    ) -> None:
        self.target = target
        self.host = host
        self.port = port or pick_port(host)
        self.name = name
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._held: set[socket.socket] = set()  # accepted by the black hole, never answered
        self._listener: socket.socket | None = None
        self._mode: CutMode | None = None
        self._closed = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._acceptor: threading.Thread | None = None
        # What happened, for assertions and failure messages.
        self.accepted = 0
        self.failed_upstream = 0
        self.held = 0
        self.reset = 0
        self.cuts = 0

    @classmethod
    def to_url(cls, url: str, default_port: int, *, name: str) -> TcpProxy:
        """A proxy to the service ``url`` names (its port, else the scheme's ``default_port``)."""
        parts = urlsplit(url)
        return cls((parts.hostname or "127.0.0.1", parts.port or default_port), name=name)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening, reset every connection, join every thread."""
        self._closed.set()
        self._stop_listening()
        self._reset_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)

    # --- addresses -----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (credentials, path and query
        kept): ``postgresql+psycopg://u@db:5432/x`` -> ``postgresql+psycopg://u@127.0.0.1:P/x``."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    # --- faults --------------------------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    def connections(self) -> int:
        """Connections being forwarded now."""
        with self._lock:
            return len(self._pairs)

    def cut(self, mode: CutMode = "refuse") -> int:
        """Reset every open connection both ways and refuse (or black-hole) new ones until
        ``restore()``; how many forwarded connections were reset."""
        if mode not in ("refuse", "blackhole"):
            raise ValueError(f"unknown cut mode {mode!r}")
        if self._mode is not None:
            raise RuntimeError(f"{self.name} is already cut ({self._mode})")
        self._mode = mode
        self.cuts += 1
        if mode == "refuse":
            self._stop_listening()
        return self._reset_all()

    def restore(self) -> None:
        """Forward again: listen on the same port (after a refusing cut) and reset whatever the
        black hole held, so its clients stop waiting."""
        mode, self._mode = self._mode, None
        if mode is None:
            return
        with self._lock:
            held, self._held = self._held, set()
        for sock in held:
            _reset(sock)
        if mode == "refuse":
            self._listen()

    @contextmanager
    def outage(self, mode: CutMode = "refuse") -> Iterator[int]:
        """``cut()`` for the block's duration; yields how many connections were reset."""
        reset = self.cut(mode)
        try:
            yield reset
        finally:
            self.restore()

    # --- internals -----------------------------------------------------------------------------

    def _listen(self) -> None:
        deadline = time.monotonic() + REBIND_SECONDS
        while True:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.host, self.port))
                break
            except OSError:
                listener.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        listener.listen(128)
        listener.settimeout(ACCEPT_POLL_SECONDS)
        self._listener = listener
        self._acceptor = self._spawn(self._accept_loop, listener, name=f"{self.name}-accept")

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.close()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None and acceptor is not threading.current_thread():
            acceptor.join(5)

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closed.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self._mode == "blackhole":
                with self._lock:
                    self._held.add(client)
                self.held += 1
                continue
            self._spawn(self._connect, client, name=f"{self.name}-connect")

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            upstream.settimeout(None)
        except OSError:
            self.failed_upstream += 1
            _reset(client)
            return
        with self._lock:
            if self._mode is not None or self._closed.is_set():
                cut_meanwhile = True
            else:
                cut_meanwhile = False
                self._pairs.add((client, upstream))
                self.accepted += 1
        if cut_meanwhile:
            _reset(client)
            _reset(upstream)
            return
        pair = (client, upstream)
        self._spawn(self._pump, client, upstream, pair, name=f"{self.name}-up")
        self._spawn(self._pump, upstream, client, pair, name=f"{self.name}-down")

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                chunk = source.recv(CHUNK)
                if not chunk:
                    break
                target.sendall(chunk)
        except OSError:
            pass
        # One side ended (or was reset): end the other, so each peer sees what the other did.
        with self._lock:
            present = pair in self._pairs
            self._pairs.discard(pair)
        if present:
            for sock in pair:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()

    def _reset_all(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, set()
            held, self._held = self._held, set()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        for sock in held:
            _reset(sock)
        self.reset += len(pairs)
        return len(pairs)
