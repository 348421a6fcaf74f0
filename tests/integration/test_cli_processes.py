"""The long-running `hub` commands (serve, worker, relay, scheduler, run) with their servers
replaced by recorders, plus `db upgrade`, `keys generate` and `connectors list`: what each
starts, and how each refuses a bad configuration or option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from sqlalchemy import inspect
from typer.testing import CliRunner

from cli import main as cli_main
from cli.main import app
from hub.bootstrap import bootstrap
from hub.settings import Settings

BAD_CONFIG = {"HUB_BROKER_URL": "amqp://guest@127.0.0.1:5672/"}  # without HUB_CACHE_URL


def hub(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    for name in ("HUB_DATABASE_URL", "HUB_DB_SCHEMA", "HUB_CACHE_URL", "HUB_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "var"


class RecordingEngine:
    """Stands in for SyncEngine: records what the command started."""

    last: RecordingEngine | None = None

    def __init__(self, settings: Settings | None = None, container: Any = None) -> None:
        self.settings = settings or Settings()
        self.container = bootstrap(self.settings)
        self.calls: list[tuple[Any, ...]] = []
        RecordingEngine.last = self

    def start_worker(self, threads: int | None = None, queues: Any = None) -> None:
        self.calls.append(("worker", threads, list(queues) if queues else None))

    def start_relay(self) -> None:
        self.calls.append(("relay",))

    def start_scheduler(self) -> None:
        self.calls.append(("scheduler",))

    def recover(self) -> list[int]:
        self.calls.append(("recover",))
        return []

    def stop(self) -> None:
        self.calls.append(("stop",))
        self.container.close()


@pytest.fixture
def recorded(embedded: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """SyncEngine, uvicorn and the wait for a signal replaced; yields uvicorn.run's calls."""
    import uvicorn

    import sync.worker.engine

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(sync.worker.engine, "SyncEngine", RecordingEngine)
    monkeypatch.setattr(cli_main, "_wait_for_signal", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: served.append({"app": target, **kw}))
    RecordingEngine.last = None
    return served


def calls() -> list[tuple[Any, ...]]:
    assert RecordingEngine.last is not None
    return RecordingEngine.last.calls


def refuses_bad_config(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    for name, value in BAD_CONFIG.items():
        monkeypatch.setenv(name, value)
    result = hub(*args)
    assert result.exit_code == 1, result.output
    assert "configuration invalid" in result.stderr
    assert "set HUB_CACHE_URL (Redis) too" in result.stderr


class TestServe:
    def test_runs_the_api_factory_on_the_given_port(self, recorded: list[dict[str, Any]]) -> None:
        assert hub("serve", "--port", "8123", "--workers", "2").exit_code == 0
        [call] = recorded
        assert call["app"] == "hub.api.app:create_app"
        assert (call["factory"], call["port"], call["workers"]) == (True, 8123, 2)

    def test_refuses_a_bad_configuration_and_a_bad_port(
        self, recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert hub("serve", "--port", "http").exit_code == 2
        refuses_bad_config(monkeypatch, "serve")
        assert recorded == []


class TestWorker:
    def test_consumes_the_chosen_queues(self, recorded: list[dict[str, Any]]) -> None:
        result = hub("worker", "--threads", "3", "--skip-queue", "images")
        assert result.exit_code == 0, result.output
        [start, stop] = calls()
        assert start[0:2] == ("worker", 3)
        assert "images" not in start[2]
        assert "orders" in start[2]
        assert stop == ("stop",)

    def test_an_unknown_queue_is_a_usage_error(self, recorded: list[dict[str, Any]]) -> None:
        result = hub("worker", "--queue", "everything")
        assert result.exit_code == 2
        assert "unknown queue everything; queues are" in result.stderr
        assert RecordingEngine.last is None


class TestRelayAndScheduler:
    @pytest.mark.parametrize("command", ["relay", "scheduler"])
    def test_starts_and_stops(self, recorded: list[dict[str, Any]], command: str) -> None:
        assert hub(command).exit_code == 0
        assert calls() == [(command,), ("stop",)]

    @pytest.mark.parametrize("command", ["relay", "scheduler", "worker", "run"])
    def test_refuses_a_bad_configuration(
        self, recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, command: str
    ) -> None:
        refuses_bad_config(monkeypatch, command)
        assert RecordingEngine.last is None


class TestRun:
    def test_migrates_recovers_and_starts_everything_with_the_api(
        self, recorded: list[dict[str, Any]], embedded: Path
    ) -> None:
        result = hub("run", "--port", "8124")
        assert result.exit_code == 0, result.output
        assert calls() == [
            ("recover",),
            ("relay",),
            ("worker", None, None),
            ("scheduler",),
            ("stop",),
        ]
        [served] = recorded
        assert served["port"] == 8124
        assert not isinstance(served["app"], str)  # the app built on the engine's container
        container = bootstrap(Settings())
        assert "shops" in inspect(container.engine).get_table_names()  # migrated first
        container.close()

    def test_a_bad_port_is_a_usage_error(self, recorded: list[dict[str, Any]]) -> None:
        assert hub("run", "--port", "eighty").exit_code == 2
        assert recorded == []


class TestDbUpgrade:
    def test_creates_the_schema(self, embedded: Path) -> None:
        result = hub("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "database at head" in result.stdout
        container = bootstrap(Settings())
        assert "outbox" in inspect(container.engine).get_table_names()
        container.close()

    def test_an_unknown_revision_says_what_to_do(self, embedded: Path) -> None:
        result = hub("db", "upgrade", "nope")
        assert result.exit_code == 1
        assert "database not upgraded to nope: Can't locate revision" in result.stderr
        assert "`hub db upgrade` goes to the newest" in result.stderr


class TestKeysAndConnectors:
    def test_keys_generate_prints_a_working_fernet_key(self) -> None:
        result = hub("keys", "generate")
        assert result.exit_code == 0
        key = result.stdout.strip()
        assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"
        assert hub("keys", "generate", "extra").exit_code == 2

    def test_connectors_list_shows_the_three_marketplaces(self, embedded: Path) -> None:
        result = hub("connectors", "list")
        assert result.exit_code == 0, result.output
        for name in ("shopify", "etsy", "woocommerce"):
            assert name in result.stdout
        assert hub("connectors", "list", "--yaml").exit_code == 2
