"""compose.yaml stays runnable: every service built from our image runs a real `hub` command."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def hub_commands() -> set[tuple[str, ...]]:
    """Every command path the CLI knows, e.g. ('db', 'upgrade'), ('worker',)."""
    group = get_command(app)
    found: set[tuple[str, ...]] = set()

    def walk(command: object, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, (*path, name))
        else:
            found.add(path)

    walk(group, ())
    return found


def test_every_service_from_our_image_runs_a_real_hub_subcommand() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ours = {name: s for name, s in compose["services"].items() if "build" in s}
    assert {"migrate", "api", "relay", "worker", "scheduler"} <= set(ours)
    known = hub_commands()
    for name, service in ours.items():
        command = service["command"]
        assert command[0] == "hub", name
        words = tuple(word for word in command[1:] if not word.startswith("-"))
        assert any(words[: len(path)] == path for path in known), f"{name}: {command}"


def test_infrastructure_services_have_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name in ("postgres", "redis", "rabbitmq"):
        assert "healthcheck" in compose["services"][name], name
