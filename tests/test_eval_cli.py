from __future__ import annotations

import skimage.data
from click.testing import CliRunner

from colorbot.cli import cli
from tests.factories import add_post, gray_copy


def test_evaluate_then_report(sessions, db_url, tmp_path):
    photo = skimage.data.astronaut()[::2, ::2].copy()
    with sessions.begin() as session:
        add_post(session, "cli1", gray_copy(photo), photo, machine=photo)
    env = {"COLORBOT_DATABASE__URL": db_url}
    runner = CliRunner()
    evaluated = runner.invoke(cli, ["evaluate"], env=env, catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.output
    assert "evaluated 1 posts (0 not alignable)" in evaluated.output
    out = tmp_path / "report"
    reported = runner.invoke(
        cli, ["report", "--since", "2024-01-01", "--model", "resenc", "--out", str(out)], env=env, catch_exceptions=False
    )
    assert reported.exit_code == 0, reported.output
    assert (out / "index.html").is_file() and (out / "metrics.csv").read_text().count("cli1") == 2


def test_report_requires_out():
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2 and "--out" in result.output
