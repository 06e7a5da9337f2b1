"""A model is what it computes: two chroma scales of one checkpoint are two models, in the database and
in the report; a name and version that already stand for another model are refused with one line."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import skimage.data
from click.testing import CliRunner
from sqlalchemy import select

from colorbot.cli import cli
from colorbot.pipeline import colorize_pending
from colorizer.client import LocalColorizer
from colorizer.export import export_model
from colorizer.model import ModelConfig, build_model
from db.models import Model, Post, PostState
from db.store import ModelIdentityClash
from eval.evaluate import evaluate_pending
from eval.report import write_report
from tests.factories import add_post, gray_copy

CONFIG = ModelConfig(backbone="tiny", weights=None, input_size=64, tiny_widths=[8, 8, 16, 16, 16])


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One checkpoint exported with chroma scales 1 and 2 (default versions), and with scale 2 under
    the version of the scale-1 export."""
    keras.utils.set_random_seed(5)
    model = build_model(CONFIG)
    root = tmp_path_factory.mktemp("scales")
    plain = export_model(model, CONFIG, root / "plain", name="resenc", version_prefix="step-7", chroma_scale=1.0)
    doubled = export_model(model, CONFIG, root / "doubled", name="resenc", version_prefix="step-7", chroma_scale=2.0)
    export_model(model, CONFIG, root / "clash", name="resenc", version=plain.version, chroma_scale=2.0)
    return {"plain": root / "plain", "doubled": root / "doubled", "clash": root / "clash",
            "versions": (plain.version, doubled.version)}


def fetched_post(sessions, reddit_id: str, photo: np.ndarray) -> None:
    with sessions.begin() as session:
        post_id = add_post(session, reddit_id, gray_copy(photo), photo[4:-4, 6:], machine=None)
        session.get(Post, post_id).state = PostState.FETCHED.value


def test_two_chroma_scales_of_one_checkpoint_are_two_models_in_the_database_and_the_report(
        sessions, exports, tmp_path):
    plain_version, doubled_version = exports["versions"]
    assert plain_version != doubled_version and plain_version.startswith("step-7-")
    # Exported once, colorizing for a while; then exported again with another chroma scale, same name.
    fetched_post(sessions, "p0", skimage.data.astronaut()[::2, ::2].copy())
    colorize_pending(sessions, [LocalColorizer(exports["plain"])])
    fetched_post(sessions, "p1", skimage.data.coffee()[::2, ::2].copy())
    colorize_pending(sessions, [LocalColorizer(exports["doubled"])])
    evaluate_pending(sessions)

    with sessions() as session:
        stored = {model.version: model for model in session.scalars(select(Model).where(Model.name == "resenc"))}
        assert set(stored) == {plain_version, doubled_version}
        assert (stored[plain_version].identity["chroma_scale"], stored[doubled_version].identity["chroma_scale"]) \
            == (1.0, 2.0)
        assert stored[plain_version].identity_sha256 != stored[doubled_version].identity_sha256

    index = write_report(sessions, tmp_path / "report")
    summary = json.loads((index.parent / "summary.json").read_text())
    labels = {"gray", f"resenc {plain_version}", f"resenc {doubled_version}"}
    assert set(summary["models"]) == labels
    assert summary["models"][f"resenc {plain_version}"]["posts"] == summary["models"][f"resenc {doubled_version}"]["posts"] == 1
    assert {row["model"] for row in summary["leaderboard"]["rows"]} == labels
    table = pd.read_csv(index.parent / "metrics.csv")
    resenc = table[table["model_name"] == "resenc"]
    assert sorted(resenc["model_version"]) == sorted([plain_version, doubled_version])
    assert resenc["model_identity"].nunique() == 2


def test_a_name_and_version_stored_for_another_identity_is_refused(sessions, exports):
    fetched_post(sessions, "p0", skimage.data.astronaut()[::2, ::2].copy())
    colorize_pending(sessions, [LocalColorizer(exports["plain"])])
    fetched_post(sessions, "p1", skimage.data.coffee()[::2, ::2].copy())
    with pytest.raises(ModelIdentityClash) as refused:
        colorize_pending(sessions, [LocalColorizer(exports["clash"])])
    message = str(refused.value)
    assert "\n" not in message
    assert f"'resenc' version '{exports['versions'][0]}'" in message
    assert "chroma_scale 1.0 stored, 2.0 configured" in message
    with sessions() as session:
        assert len(session.scalars(select(Model).where(Model.name == "resenc")).all()) == 1
        assert session.scalar(select(Post.state).where(Post.reddit_id == "p1")) == PostState.FETCHED.value


def test_colorbot_run_refuses_a_clashing_model_with_one_line(sessions, db_url, exports, tmp_path, monkeypatch):
    with sessions.begin() as session:
        from colorbot.pipeline import model_row

        model_row(session, LocalColorizer(exports["plain"]).identity)
    monkeypatch.chdir(tmp_path)
    env = {"COLORBOT_DATABASE__URL": db_url, "COLORBOT_REDDIT__CLIENT_ID": "id", "COLORBOT_REDDIT__CLIENT_SECRET": "s",
           "COLORBOT_COLORIZER__MODELS": f'[{{name = "resenc", path = "{exports["clash"]}"}}]'}
    result = CliRunner().invoke(cli, ["run", "--once"], env=env)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("colorbot: error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "stored with another identity: chroma_scale 1.0 stored, 2.0 configured" in errors[0]
