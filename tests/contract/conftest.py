"""What the contract tests share: one sandbox server per module and a clock moved by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.types import Receive, Scope, Send

from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox


@dataclass
class FakeClock:
    """A monotonic clock that stands still until a test moves ``now``: the sandbox's buckets
    and the rate limiters refill only when the test says so."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Switchboard:
    """One server for the module, forwarding to the current test's sandbox: starting and
    stopping a server per test would cost more than the tests themselves."""

    def __init__(self) -> None:
        self.target: ShopifySandbox | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "no sandbox is plugged in"
        await self.target.app(scope, receive, send)


@pytest.fixture(scope="module")
def shopify_server() -> Iterator[tuple[Switchboard, str]]:
    """The module's Shopify server and its base URL; plug a sandbox in as ``target``."""
    switchboard = Switchboard()
    with serve_in_thread(switchboard) as url:
        yield switchboard, url
