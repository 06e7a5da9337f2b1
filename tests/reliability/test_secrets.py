"""No credential ever reaches a log, an output, a report or the database.

``colorbot run --once`` runs the whole chain (scrape, colorize, evaluate, report and a live
reply, so PRAW logs in with the password grant) against the replay server, with distinctive
credentials given through both the config file and environment variables, logging at DEBUG
into a log file. Then every byte the run wrote (the log, stdout, every file under its working
folder and its HOME and TMPDIR: the SQLite database with its -wal/-shm, the report folder,
caches) is searched for each secret as written, URL-encoded, and base64-encoded (alone and as
HTTP Basic's ``client_id:client_secret``), and for the access tokens the server issued.

Errors about the configuration, which name the offending key, never show a secret value either.

The user name is public once the bot posts (Reddit shows its comments under it), so the replay
server's account (``me``) differs from the configured login name: what is checked is that the
login configuration itself is never written out.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote, quote_plus

import pytest

import bot.replay
from bot.replay import ReplayServer, build_snapshot
from colorbot.demo import demo_pairs, side_by_side

CLIENT_ID = "cid-Zq8vK2mWx4"
CLIENT_SECRET = "csec-9fJ3xP0LwQ/r+T="  # '/', '+' and '=' encode differently in URLs and forms
USERNAME = "login-Hk4tR7bn"
PASSWORD = "pw:Vb6n M1qZ&%é"  # a space, '&', '%' and a non-ASCII letter: every encoding differs
APP_TOKEN = "tok-app-Y3mQ8sLp2d"
USER_TOKEN = "tok-user-Wc5hN1vR7k"


def forms_of(secret: str) -> set[str]:
    """The ways a secret could be written out: as is, URL- and form-encoded, base64."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    encoded = base64.b64encode(secret.encode()).decode()
    forms |= {encoded, encoded.rstrip("="), base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")}
    return forms


def needles() -> dict[str, str]:
    """Every form of every secret -> which secret it is."""
    found: dict[str, str] = {}
    for name, secret in {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": USERNAME,
                         "password": PASSWORD, "app token": APP_TOKEN, "user token": USER_TOKEN}.items():
        for form in forms_of(secret):
            found[form] = name
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    found[basic] = "HTTP Basic client_id:client_secret"
    return found


def leaks_in(data: bytes) -> list[str]:
    hits = []
    for needle, name in needles().items():
        for encoding in ("utf-8", "utf-16-le"):  # SQLite may store text as UTF-16
            if needle.encode(encoding) in data:
                hits.append(f"{name} as {needle!r} ({encoding})")
    return hits


@pytest.fixture
def authorizations(monkeypatch):
    """The Authorization headers the replay server received, to show the secrets were really used."""
    seen: list[str] = []
    dispatch = bot.replay._Handler._dispatch

    def recording(self, method):
        seen.append(self.headers.get("Authorization") or "")
        return dispatch(self, method)

    monkeypatch.setattr(bot.replay._Handler, "_dispatch", recording)
    return seen


def test_a_full_run_with_a_live_reply_writes_no_secret_anywhere(tmp_path, tiny_models, authorizations):
    model = tiny_models[0]
    # Real photos (scikit-image's), so that the alignment succeeds and there are metrics to reply with.
    snapshot = build_snapshot(demo_pairs()[:2], layouts=("gallery", "composite"),
                              compose=side_by_side, start_utc=time.time() - 3600)  # young enough to reply to
    work, home, private = tmp_path / "work", tmp_path / "work" / "home", tmp_path / "private"
    for folder in (work, home, home / "tmp", private):
        folder.mkdir(parents=True)
    with ReplayServer(snapshot) as server:
        # Distinctive tokens, so a leaked token cannot hide among the replay server's fixed words.
        server._token, server._user_token = APP_TOKEN, USER_TOKEN
        reddit = server.reddit_settings(client_id=None, client_secret=CLIENT_SECRET, username=USERNAME)
        # No reddit.owner: the user agent must not fall back to the login name.
        reddit = {key: value for key, value in reddit.items() if value is not None and key != "owner"}
        lines = [
            "[database]", f'url = "sqlite:///{work / "colorbot.db"}"',
            "[logging]", 'level = "DEBUG"',
            "[reddit]", *(f"{key} = {json.dumps(value)}" for key, value in reddit.items()),
            "[download]", *(f"{key} = {json.dumps(value)}" for key, value in server.download_settings().items()),
            "[pipeline]", f'report_dir = "{work / "report"}"',
            "[reply]", "enabled = true", "dry_run = false", f'model = "{model.name}"',
            "[[colorizer.models]]", f'name = "{model.name}"', f'path = "{model}"',
        ]
        # The config file holds secrets by design; it lives outside the folders searched.
        config = private / "colorbot.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if not key.startswith("COLORBOT_")}
        env.update({"COLORBOT_REDDIT__CLIENT_ID": CLIENT_ID, "COLORBOT_REDDIT__PASSWORD": PASSWORD,
                    "HOME": str(home), "TMPDIR": str(home / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3"})
        log = work / "colorbot.log"
        with log.open("wb") as stderr:
            result = subprocess.run([sys.executable, "-m", "colorbot", "-v", "--config", str(config), "run", "--once"],
                                    cwd=work, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=600)
        stdout = result.stdout
        posted = list(server.posted_comments)
        agents = set(server.user_agents)

    assert result.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert b"reply: ok" in stdout and len(posted) == 2  # the live reply ran, logged in
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert basic in authorizations and f"bearer {USER_TOKEN}" in authorizations  # the secrets were in play
    assert b"DEBUG" in log.read_bytes()  # the log is as talkative as it gets

    in_config = leaks_in(config.read_bytes())  # the search itself works: it finds what the file holds
    assert any(hit.startswith("client_secret as") for hit in in_config)
    assert any(hit.startswith("username as") for hit in in_config)

    written = sorted(path for path in work.rglob("*") if path.is_file())
    assert {"colorbot.db", "colorbot.log", "index.html", "settings.json"} <= {path.name for path in written}
    leaks = {"stdout": leaks_in(stdout)}
    leaks.update({str(path.relative_to(work)): leaks_in(path.read_bytes()) for path in written})
    assert not {where: hits for where, hits in leaks.items() if hits}
    assert agents and not [agent for agent in agents if leaks_in(agent.encode())]  # nor sent to the image hosts


@pytest.mark.parametrize(
    "text, env",
    [
        (f"[reddit]\npassword = [{json.dumps(PASSWORD)}]\n", {}),
        (f"[reddit]\nclient_secret = {{ value = {json.dumps(CLIENT_SECRET)} }}\n", {}),
        ("", {"COLORBOT_REDDIT__PASSWORDD": PASSWORD}),
        ("", {"COLORBOT_REDDIT__CLIENT_SECRET": CLIENT_SECRET, "COLORBOT_REDDIT__LIMIT": CLIENT_SECRET}),
    ],
    ids=["password-list", "secret-table", "misspelt-password", "secret-in-a-wrong-place"],
)
def test_configuration_errors_never_show_a_secret(tmp_path, text, env):
    from colorbot.config import ConfigError, load_config

    path = tmp_path / "colorbot.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ=env)
    assert not leaks_in(str(error.value).encode())


# -- every URL in a message, a log line or a stored error is shown with its credentials masked --------

DB_PASSWORD = "dbpw-Qx7Lm2Zr9"
SERVER_PASSWORD = "srvpw-Hn3Tc8Wd5"


def run_colorbot(*args: str, env_extra: dict[str, str], cwd) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLORBOT_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "colorbot", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg//colorbot:{DB_PASSWORD}@db.example:5432/colorbot",  # '://' typed as '//'
        f"postgresql+psycopg://colorbot:{DB_PASSWORD}@db.example:54x2/colorbot",  # a port that is not a number
        f"postgresql+nodriver://colorbot:{DB_PASSWORD}@db.example/colorbot",  # no such driver
    ],
    ids=["missing-colon", "port-typo", "unknown-driver"],
)
def test_a_database_url_typo_is_one_line_without_its_password(tmp_path, url):
    result = run_colorbot("db", "stats", env_extra={"COLORBOT_DATABASE__URL": url}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorbot: error: database.url:"), result.stderr
    assert "Traceback" not in result.stderr
    assert DB_PASSWORD not in result.stderr + result.stdout and "colorbot:***@" in lines[0]


def test_a_model_server_url_with_a_password_is_masked_in_the_command_output(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 12), (80, 80, 80)).save(tmp_path / "a.png")
    models = f'[{{name = "remote", url = "http://colorbot:{SERVER_PASSWORD}@127.0.0.1:9"}}]'
    result = run_colorbot("colorize", "a.png", "--out", "out", env_extra={"COLORBOT_COLORIZER__MODELS": models},
                          cwd=tmp_path)
    assert result.returncode == 2 and "cannot load model" in result.stderr, result.stderr
    assert SERVER_PASSWORD not in result.stderr + result.stdout and "colorbot:***@127.0.0.1:9" in result.stderr


def test_a_model_server_url_with_a_password_is_masked_in_the_log_and_in_last_error(sessions, caplog):
    from colorbot.pipeline import colorize_pending
    from colorizer.client import RemoteColorizer
    from colorizer.serve import ModelServer, ServeSettings
    from db import Post
    from tests.test_pipeline.test_colorize_step import fetched_post

    def failing(images):
        raise RuntimeError("the network ran out of memory")

    post_id = fetched_post(sessions, failed_fetches=0)
    with ModelServer("remote", "1", failing, ServeSettings(port=0)) as server:
        url = server.url.replace("http://", f"http://colorbot:{SERVER_PASSWORD}@")
        remote = RemoteColorizer(url, "remote")
        with caplog.at_level("WARNING"):
            summary = colorize_pending(sessions, [remote])
    with sessions() as session:
        stored = session.get(Post, post_id).last_error
    assert summary.failed == 1 and "HTTP 500" in stored and "colorbot:***@" in stored
    assert SERVER_PASSWORD not in stored
    assert "colorbot:***@" in caplog.text and SERVER_PASSWORD not in caplog.text


def test_the_log_masks_any_url_password_whoever_logs_it(capsys):
    import logging

    from colorbot.logs import CredentialMask

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CredentialMask())
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("connecting to %s", f"https://bot:{SERVER_PASSWORD}@models.example/v1")
        try:
            raise ConnectionError(f"refused: http://bot:{SERVER_PASSWORD}@models.example/")
        except ConnectionError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    written = capsys.readouterr().err
    assert "https://bot:***@models.example/v1" in written and "ConnectionError: refused" in written
    assert SERVER_PASSWORD not in written


def test_without_an_owner_the_user_agent_and_the_debug_log_never_name_the_login(caplog):
    from bot.client import make_reddit, user_agent
    from bot.settings import RedditSettings

    settings = RedditSettings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, username=USERNAME, password=PASSWORD)
    assert USERNAME not in user_agent(settings)
    with caplog.at_level("DEBUG"):
        make_reddit(settings)
    assert "reddit client:" in caplog.text and USERNAME not in caplog.text
    assert "(by u/owner-name)" in user_agent(settings.model_copy(update={"owner": "owner-name"}))
