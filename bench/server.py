"""The API under test as a uvicorn subprocess, pinned to its own core.

The server runs in a separate process, pinned with ``taskset`` to a core the load generator does
not use, so the two never compete for the interpreter or the CPU and the measured latency is the
server's. Its output goes to a log file that is shown when it fails to start and scanned for
tracebacks afterwards (a benchmark that hid server errors would report nonsense fast).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from bench.loadgen import Target, fetch

ROOT = Path(__file__).resolve().parent.parent


def uvicorn_command(port: int | str, core: int | None) -> list[str]:
    """How the server is started: the app factory, no access log, pinned when ``core`` is set."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "hub.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return command if core is None else ["taskset", "-c", str(core), *command]


class ServerError(RuntimeError):
    """The API did not start, or not healthy."""


class ApiServer:
    """``async with ApiServer(...) as server:`` starts uvicorn, waits until ready, stops it."""

    def __init__(
        self,
        *,
        target: Target,
        env: Mapping[str, str],
        log_path: Path,
        core: int | None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.log_path = log_path
        # Inherited HUB_* variables would silently change what is measured: only ours count.
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
        self._env = {**inherited, **env}
        self._core = core
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return uvicorn_command(self.target.port, self._core)

    async def start(self) -> None:
        target = self.target
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process.poll() is not None:
                raise ServerError(f"uvicorn exited with {self._process.returncode}\n{self.tail()}")
            try:
                if (await fetch(target, "/healthz", timeout=2.0)).status == 200:
                    break
            except (OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"no /healthz after {self._startup_timeout}s\n{self.tail()}")
            await asyncio.sleep(0.1)
        ready = await fetch(target, "/readyz")
        if ready.status != 200:
            raise ServerError(f"/readyz answered {ready.status}: {ready.body.decode()}")

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn drains and runs the lifespan shutdown); SIGKILL if stuck."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def error_lines(self) -> int:
        """Tracebacks and ERROR lines the server logged: anything above zero deserves a look."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(1 for line in text.splitlines() if "Traceback" in line or "ERROR" in line)

    def error_excerpt(self, limit: int = 3, width: int = 400) -> list[str]:
        """The first few ERROR lines and tracebacks (as their innermost frame and exception):
        a result file says what went wrong, not just how often."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        found: list[str] = []
        for index, line in enumerate(lines):
            if "Traceback" in line:
                frames = [f for f in lines[index + 1 : index + 60] if f.startswith("  File")]
                ending = next(
                    (f for f in lines[index + 1 : index + 60] if f and not f.startswith(" ")), ""
                )
                found.append(f"{frames[-1].strip() if frames else ''} -> {ending}"[:width])
            elif "ERROR" in line:
                found.append(line[:width])
            if len(found) >= limit:
                break
        return found

    async def __aenter__(self) -> ApiServer:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
