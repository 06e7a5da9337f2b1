"""The command line: help texts, and one-line errors for a bad --config or database URL.

The full table of configuration errors is in tests/reliability/test_bad_input.py.
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from colorbot.cli import cli


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from all_commands(command, path)


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "colorbot")
def test_every_command_describes_itself(path):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="colorbot")
    assert result.exit_code == 0, result.output
    assert "Usage: colorbot" in result.output
    command = cli
    for name in path:
        command = command.commands[name]
    summary = command.get_short_help_str()
    assert summary and summary.split()[0] in result.output


def run_colorbot(*args, cwd, env_extra=None):
    """Run the installed entry point as a user would, in its own process."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORBOT_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "colorbot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_wrongly_typed_value_is_named(tmp_path):
    (tmp_path / "other.toml").write_text('[download]\nmax_bytes = "lots"\n')
    result = run_colorbot("--config", "other.toml", "db", "stats", cwd=tmp_path)
    assert_one_line_error(result, "download.max_bytes", "other.toml")


def test_missing_explicit_config_file_is_an_error(tmp_path):
    result = run_colorbot("--config", "nope.toml", "db", "stats", cwd=tmp_path)
    assert_one_line_error(result, "nope.toml", "no such configuration file")


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("not a url", "not an SQLAlchemy URL"),
        ("nosuchdialect://host/db", "nosuchdialect"),
        ("sqlite:////no/such/folder/colorbot.db", "/no/such/folder"),
    ],
)
def test_bad_database_url_is_named(tmp_path, url, fragment):
    result = run_colorbot("db", "stats", cwd=tmp_path, env_extra={"COLORBOT_DATABASE__URL": url})
    assert_one_line_error(result, "database.url", fragment)


def test_database_password_never_appears_in_an_error(tmp_path):
    result = run_colorbot(
        "db",
        "stats",
        cwd=tmp_path,
        env_extra={"COLORBOT_DATABASE__URL": "nosuchdialect://user:hunter2@host/db"},
    )
    assert result.returncode == 2
    assert "hunter2" not in result.stderr + result.stdout


def test_db_upgrade_and_stats_on_a_fresh_folder(tmp_path):
    result = run_colorbot("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database at revision 0007" in result.stdout  # the newest migration
    assert (tmp_path / "colorbot.db").exists()
    result = run_colorbot("db", "stats", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    stats = json.loads(result.stdout)
    assert stats["tables"]["posts"] == 0
    assert set(stats["tables"]) >= {
        "posts",
        "images",
        "post_images",
        "models",
        "colorizations",
        "metrics",
        "replies",
        "job_runs",
    }
