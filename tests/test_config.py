from __future__ import annotations

from colorbot.config import load_config


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.database.url == "sqlite:///colorbot.db"
    assert config.reddit.subreddits == ["colorization"]


def test_environment_overrides_the_file(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[reddit]\nlimit = 10\nsubreddits = ["colorization"]\n')
    config = load_config(
        file,
        environ={
            "COLORBOT_REDDIT__LIMIT": "25",
            "COLORBOT_REDDIT__SUBREDDITS": '["colorization", "OldSchoolCool"]',
            "COLORBOT_REDDIT__CLIENT_SECRET": "s3cret",
            "COLORBOT_DOWNLOAD__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        },
    )
    assert config.reddit.limit == 25
    assert config.reddit.subreddits == ["colorization", "OldSchoolCool"]
    assert config.download.allowed_networks == ["127.0.0.1/32"]
    assert config.reddit.client_secret.get_secret_value() == "s3cret"


def test_secrets_do_not_show_in_reprs_or_dumps():
    config = load_config(
        None,
        environ={"COLORBOT_REDDIT__CLIENT_SECRET": "s3cret", "COLORBOT_REDDIT__PASSWORD": "pw123456"},
    )
    for text in (repr(config), str(config), config.model_dump_json()):
        assert "s3cret" not in text and "pw123456" not in text
