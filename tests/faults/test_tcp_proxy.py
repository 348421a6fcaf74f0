"""The fault proxy itself, against a loopback echo server: it forwards, a cut resets open
connections both ways and refuses (or black-holes) new ones, and restore() forwards again on the
same port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import pytest

from tests.support.tcp_proxy import TcpProxy


class EchoServer:
    """Echoes every byte; counts the connections that ended (EOF or reset) on its side."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.ended = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            while chunk := conn.recv(4096):
                conn.sendall(chunk)
        except OSError:
            pass
        finally:
            self.ended += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(2)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", echo.port), name="echo-proxy") as running:
        yield running


def roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def dead(conn: socket.socket) -> bool:
    """The connection was ended by the other side (EOF or RST)."""
    conn.settimeout(2.0)
    try:
        return conn.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_it_forwards_both_ways_and_rewrites_urls(proxy: TcpProxy) -> None:
    assert roundtrip(proxy.port, b"hello") == b"hello"
    assert proxy.url("postgresql+psycopg://postgres@db.example:5432/test?x=1") == (
        f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?x=1"
    )
    assert proxy.url("amqp://guest:guest@127.0.0.1:5672/%2F") == (
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
    )
    assert proxy.url("redis://127.0.0.1:6379/15") == f"redis://127.0.0.1:{proxy.port}/15"


def test_a_refusing_cut_resets_both_ways_refuses_new_connections_and_restores(
    proxy: TcpProxy, echo: EchoServer
) -> None:
    conn = socket.create_connection(proxy.address, timeout=2)
    conn.sendall(b"a")
    assert conn.recv(10) == b"a"
    assert wait_for(lambda: proxy.connections() == 1)

    assert proxy.cut("refuse") == 1
    assert dead(conn)  # the client's side
    assert wait_for(lambda: echo.ended == 1)  # and the service's side
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=2)
    conn.close()

    proxy.restore()
    assert roundtrip(proxy.port, b"again") == b"again"
    assert proxy.cuts == 1
    assert proxy.reset == 1


def test_a_black_hole_accepts_and_never_answers_until_restored(proxy: TcpProxy) -> None:
    proxy.cut("blackhole")
    conn = socket.create_connection(proxy.address, timeout=2)  # the handshake succeeds
    conn.sendall(b"anyone?")
    conn.settimeout(0.3)
    with pytest.raises(TimeoutError):
        conn.recv(10)
    assert wait_for(lambda: proxy.held == 1)

    proxy.restore()
    assert dead(conn)  # what the black hole held is let go
    conn.close()
    assert roundtrip(proxy.port) == b"ping"


def test_outage_restores_on_exit_and_close_joins_everything(echo: EchoServer) -> None:
    proxy = TcpProxy(("127.0.0.1", echo.port)).start()
    conn = socket.create_connection(proxy.address, timeout=2)
    with proxy.outage() as reset:
        assert reset in (0, 1)  # the pump may not have registered the pair yet
        assert proxy.is_cut
    assert not proxy.is_cut
    assert roundtrip(proxy.port) == b"ping"
    proxy.close()
    with suppress(OSError):
        conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=2)
    assert not any(t.name.startswith("tcp-proxy") for t in threading.enumerate())
