"""The README documents every command, as sqlite-utils' docs test does for its CLI."""

from __future__ import annotations

from pathlib import Path

import click

from colorbot.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, f"{path} "))
        else:
            paths.append(path)
    return paths


def test_the_readme_lists_every_command():
    text = README.read_text()
    paths = _command_paths(cli)
    assert len(paths) > 10
    missing = [path for path in paths if f"`colorbot {path}" not in text]
    assert not missing, f"README.md does not document: {missing}"
