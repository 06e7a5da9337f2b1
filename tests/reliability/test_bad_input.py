"""Bad input at every entry point gets a clear message and a refusal, never a traceback or a hang.

* ``colorbot colorize`` (run as a user runs it, in its own process, on a tiny exported model):
  corrupt, truncated, empty, missing and decompression-bomb files are refused one line each,
  naming the file, while the rest of the files are still colorized (exit code 1); what a user
  reasonably expects to work works: CMYK JPEGs, 16-bit PNGs (scaled, not clipped), animated
  GIF/APNG/WebP (their first frame, deliberately), files sharing a name (none overwrites
  another). A directory, an unusable output folder or a missing model stop the command with
  exit code 2 and one line.
* the model server (``colorizer.serve.ModelServer``): every malformed request gets a 4xx with
  a JSON ``error`` saying what is wrong, within a few seconds even when the client stalls,
  and the server is still healthy and serving afterwards.
* the configuration: the complete table of wrong types, unknown keys and sections, unknown
  ``COLORBOT_*`` variables, malformed and unreadable files; each gives one line naming the key
  (or file) and where it came from, exit code 2.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import requests
from click.testing import CliRunner

from bot.replay import bomb_png
from colorbot.cli import cli
from colorizer.serve import ModelServer, ServeSettings
from tests.factories import corrupt_exif_jpeg, encoded, gradient_scene, luma, rgb16_png

COMMAND_TIMEOUT_S = 180  # a hang (a bomb decoded, a blocking read) fails the test instead of the run


def run_colorbot(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLORBOT_")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "colorbot", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S)


def lines_about(stderr: str, path: Path | str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"colorbot: {path}:")]


# -- images -------------------------------------------------------------------------------------


FRAME_LEVELS = (40, 210)  # the first frame dark, the second light: the output shows which was used


def animation(fmt: str) -> bytes:
    frames = [PIL.Image.new("RGB", (60, 40), (level, level, level)) for level in FRAME_LEVELS]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


PHOTO = gradient_scene()
PHOTO_JPEG = encoded(PIL.Image.fromarray(PHOTO), "JPEG", quality=95)
PHOTO_PNG = encoded(PIL.Image.fromarray(PHOTO), "PNG")
GRAY16 = (luma(PHOTO) * 257).astype(np.uint16)  # full 16-bit range: clipping to 8 bits would show
RGB16 = PHOTO.astype(np.uint16) * 257 + np.uint16(0x7F)

# name -> (file bytes or None for a file that does not exist, what stderr must say)
REFUSED = {
    "corrupt.jpg": (np.random.default_rng(7).bytes(6000), "cannot read image"),
    "truncated.jpg": (PHOTO_JPEG[: len(PHOTO_JPEG) // 2], "truncated"),
    "truncated.png": (PHOTO_PNG[: len(PHOTO_PNG) // 2], "truncated"),
    "bomb.png": (bomb_png(100_000, 100_000, padding=0), "pixels"),
    "empty.jpg": (b"", "cannot read image"),
    "corrupt-exif.jpg": (corrupt_exif_jpeg(), "EXIF block is corrupt"),  # Pillow's exif_transpose raises TypeError
    "missing.jpg": (None, "No such file"),
}
# name -> (file bytes, expected luminance of the result, or None to check only the size)
COLORIZED = {
    "cmyk.jpg": (encoded(PIL.Image.fromarray(PHOTO).convert("CMYK"), "JPEG", quality=95), luma(PHOTO)),
    "gray16.png": (encoded(PIL.Image.fromarray(GRAY16), "PNG"), GRAY16 / 257),
    "rgb16.png": (rgb16_png(RGB16), luma(RGB16 >> 8)),
    "animated.gif": (animation("GIF"), np.full((40, 60), FRAME_LEVELS[0])),
    "animated.webp": (animation("WEBP"), np.full((40, 60), FRAME_LEVELS[0])),
    "animated-apng.png": (animation("PNG"), np.full((40, 60), FRAME_LEVELS[0])),
}
TWINS = {"twin.png": np.full((30, 50), 60), "twin.jpg": np.full((30, 50), 190)}  # both would be twin.png
BLOCKED = "blocked.png"  # its result's path is taken by a folder


@pytest.fixture(scope="module")
def colorize_run(tmp_path_factory, tiny_models):
    """One ``colorbot colorize`` over every file at once: a bad file must not stop the others."""
    folder = tmp_path_factory.mktemp("colorize")
    inputs = folder / "in"
    inputs.mkdir()
    out = folder / "out"
    (out / BLOCKED).mkdir(parents=True)
    files = {name: data for name, (data, _) in {**REFUSED, **COLORIZED}.items() if data is not None}
    files[BLOCKED] = PHOTO_PNG
    for name, level in TWINS.items():
        files[name] = encoded(PIL.Image.fromarray(level.astype(np.uint8)), "PNG" if name.endswith("png") else "JPEG")
    for name, data in files.items():
        (inputs / name).write_bytes(data)
    order = [*REFUSED, *COLORIZED, *TWINS, BLOCKED]
    result = run_colorbot("colorize", *(str(inputs / name) for name in order), "--out", str(out),
                          "--model", str(tiny_models[0]), cwd=folder)
    return result, inputs, out


def result_luma(path: Path) -> np.ndarray:
    with PIL.Image.open(path) as image:
        return luma(np.asarray(image.convert("RGB")))


def test_colorize_reports_each_bad_file_and_goes_on(colorize_run):
    result, _inputs, out = colorize_run
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    written = {Path(line).name for line in result.stdout.splitlines()}
    assert written == {"cmyk.png", "gray16.png", "rgb16.png", "animated.png", "animated-2.png", "animated-apng.png",
                       "twin.png", "twin-2.png"}
    assert all((out / name).is_file() for name in written)


@pytest.mark.parametrize("name", list(REFUSED))
def test_colorize_refuses_an_unreadable_file_in_one_line_naming_it(colorize_run, name):
    result, inputs, out = colorize_run
    lines = lines_about(result.stderr, inputs / name)
    assert len(lines) == 1, result.stderr[-3000:]
    assert REFUSED[name][1] in lines[0]
    assert not (out / f"{Path(name).stem}.png").exists()


def test_a_decompression_bomb_is_refused_from_its_header():
    # 10^10 pixels: decoding would need 30 GB and minutes; the header alone must settle it.
    from colorizer.inference import UnreadableImageError, load_rgb

    started = time.monotonic()
    with pytest.raises(UnreadableImageError, match="pixels"):
        load_rgb(bomb_png(100_000, 100_000))
    assert time.monotonic() - started < 2


def test_colorize_says_which_result_could_not_be_written(colorize_run):
    result, inputs, out = colorize_run
    lines = lines_about(result.stderr, inputs / BLOCKED)
    assert len(lines) == 1 and "cannot write" in lines[0] and str(out / BLOCKED) in lines[0]


# The luminance of a result is the input's (the network predicts only chroma): that shows the
# file was read correctly: 16-bit scaled rather than clipped, CMYK converted, the first frame used.
OUTPUT_NAMES = {"cmyk.jpg": "cmyk.png", "gray16.png": "gray16.png", "rgb16.png": "rgb16.png",
                "animated.gif": "animated.png", "animated.webp": "animated-2.png",
                "animated-apng.png": "animated-apng.png"}


@pytest.mark.parametrize("name", list(COLORIZED))
def test_colorize_reads_what_a_user_expects_to_work(colorize_run, name):
    result, inputs, out = colorize_run
    assert not lines_about(result.stderr, inputs / name), result.stderr[-3000:]
    expected = COLORIZED[name][1]
    got = result_luma(out / OUTPUT_NAMES[name])
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 4.0


def test_inputs_sharing_a_name_do_not_overwrite_each_other(colorize_run):
    _result, _inputs, out = colorize_run
    for output, level in zip(("twin.png", "twin-2.png"), TWINS.values()):
        assert np.abs(result_luma(out / output) - level).mean() < 4.0


def test_colorize_refuses_a_directory_as_an_image(tmp_path):
    (tmp_path / "photos").mkdir()
    result = run_colorbot("colorize", "photos", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'photos' is a directory" in result.stderr


def test_colorize_refuses_an_output_folder_it_cannot_create(tmp_path):
    # Permissions do not stop root, which the tests may run as; a regular file in the way stops anyone.
    (tmp_path / "photo.png").write_bytes(PHOTO_PNG)
    (tmp_path / "not-a-folder").write_text("")
    result = run_colorbot("colorize", "photo.png", "--out", "not-a-folder/results", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "colorbot: error: colorize: cannot create the output folder not-a-folder/results: Not a directory")


def test_colorize_refuses_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "photo.png").write_bytes(PHOTO_PNG)
    (tmp_path / "empty-model").mkdir()
    result = run_colorbot("colorize", "photo.png", "--out", "out", "--model", "empty-model", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("colorbot: error: colorize: cannot load model:") and "empty-model" in last


# -- the model server ---------------------------------------------------------------------------

BODY_LIMIT = 64 * 1024
PIXEL_LIMIT = 1_000_000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def instances(*payloads: bytes) -> str:
    return json.dumps({"instances": [{"b64": b64(payload)} for payload in payloads]})


SMALL_PNG = encoded(PIL.Image.fromarray(PHOTO[:24, :32]), "PNG")


@pytest.fixture(scope="module")
def server():
    # The network is not what is tested here: an identity "model" keeps the module fast.
    settings = ServeSettings(port=0, max_body_bytes=BODY_LIMIT, max_pixels=PIXEL_LIMIT)
    with ModelServer("tiny", "1", lambda images: list(images), settings) as running:
        yield running


def raw_exchange(server: ModelServer, request: bytes, *, hang_up: bool, timeout_s: float = 15.0) -> tuple[int, dict, dict]:
    """Send bytes as they are (what requests would never send), hang up or wait, and read one answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as connection:
        connection.sendall(request)
        if hang_up:
            connection.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, dict(answer.getheaders()), json.loads(answer.read())


PREDICT = "/v1/models/tiny:predict"
# id -> (method, path, headers, body, status, fragment of the error)
BAD_REQUESTS = {
    "malformed-json": ("POST", PREDICT, {}, "{not json", 400, "not JSON"),
    "json-array": ("POST", PREDICT, {}, "[1, 2]", 400, "expected"),
    "no-instances-key": ("POST", PREDICT, {}, json.dumps({"inputs": [{"b64": b64(SMALL_PNG)}]}), 400, "expected"),
    "instances-not-a-list": ("POST", PREDICT, {}, json.dumps({"instances": {"b64": b64(SMALL_PNG)}}), 400, "expected"),
    "instances-empty": ("POST", PREDICT, {}, '{"instances": []}', 400, "expected"),
    "instance-wrong-key": ("POST", PREDICT, {}, json.dumps({"instances": [{"image": b64(SMALL_PNG)}]}), 400,
                           "instance 0"),
    "b64-not-a-string": ("POST", PREDICT, {}, '{"instances": [{"b64": 12}]}', 400, "instance 0"),
    "invalid-base64": ("POST", PREDICT, {}, '{"instances": [{"b64": "@@not base64@@"}]}', 400, "invalid base64"),
    "not-an-image": ("POST", PREDICT, {}, instances(b"<html>hello</html>"), 400, "cannot read image"),
    "truncated-image": ("POST", PREDICT, {}, instances(PHOTO_PNG[: len(PHOTO_PNG) // 2]), 400, "truncated"),
    "bomb": ("POST", PREDICT, {}, instances(bomb_png(100_000, 100_000, padding=0)), 413, "pixels"),
    "over-pixel-limit": ("POST", PREDICT, {}, instances(bomb_png(1500, 1000, padding=0)), 413, "over the limit"),
    "second-instance-bad": ("POST", PREDICT, {}, instances(SMALL_PNG, b"GIF89a junk"), 400, "instance 1"),
    "deeply-nested": ("POST", PREDICT, {}, "[" * 20_000 + "]" * 20_000, 400, "nested"),
    "raw-jpeg-body": ("POST", PREDICT, {"Content-Type": "image/jpeg"}, PHOTO_JPEG, 400, "not JSON"),
    "multipart-upload": ("POST", PREDICT, {"Content-Type": "multipart/form-data; boundary=x"},
                         b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\n" + SMALL_PNG + b"\r\n--x--\r\n",
                         400, "not JSON"),
    "oversized-body": ("POST", PREDICT, {}, "x" * (BODY_LIMIT + 1), 413, "limit"),
    "unknown-model": ("POST", "/v1/models/other:predict", {}, instances(SMALL_PNG), 404, "no such endpoint"),
    "unknown-version": ("POST", "/v1/models/tiny/versions/7:predict", {}, instances(SMALL_PNG), 404,
                        "has no version '7'; this server serves '1'"),
    "unknown-version-status": ("GET", "/v1/models/tiny/versions/7", {}, None, 404, "has no version '7'"),
    "get-on-pinned-predict": ("GET", "/v1/models/tiny/versions/1:predict", {}, None, 405, "use POST"),
    "get-on-predict": ("GET", PREDICT, {}, None, 405, "use POST"),
    "put-on-predict": ("PUT", PREDICT, {}, instances(SMALL_PNG), 405, "use POST"),
    "delete-model": ("DELETE", "/v1/models/tiny", {}, None, 405, "use GET"),
    "post-on-healthz": ("POST", "/healthz", {}, "{}", 405, "use GET"),
    "unknown-path": ("GET", "/v2/anything", {}, None, 404, "no such endpoint"),
}
# What http.client and requests refuse to send: id -> (bytes, hang up after sending, status, fragment)
RAW_REQUESTS = {
    "no-content-length": (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                          False, 411, "Content-Length"),
    "negative-content-length": (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", False, 400,
                                "negative"),
    "huge-content-length": (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n", False, 413,
                            "limit"),
    # The client announces 500 bytes, sends 20 and waits: the server's socket time-out ends it ...
    "stalled-body": (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + "{" * 20, False, 408,
                     "not received within"),
    # ... or sends 20 and hangs up.
    "body-cut-short": (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + "{" * 20, True, 400,
                       "20 of the 500"),
    "malformed-request-line": ("GET / extra HTTP/1.1\r\n\r\n", False, 400, "Bad request syntax"),
    "header-line-too-long": ("GET /healthz HTTP/1.1\r\nX-Padding: " + "a" * 70_000 + "\r\n\r\n", False, 431,
                             "Line too long"),
}


def assert_still_serving(server: ModelServer) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    answer = requests.post(f"{server.url}{PREDICT}", data=instances(SMALL_PNG), timeout=30)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_a_4xx_with_a_json_message(server, case):
    method, path, headers, body, status, fragment = BAD_REQUESTS[case]
    answer = requests.request(method, f"{server.url}{path}", headers=headers, data=body, timeout=30)
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["Content-Type"] == "application/json"
    assert fragment in answer.json()["error"]
    if status == 405:
        assert answer.headers["Allow"] in ("GET", "POST")
    assert_still_serving(server)


@pytest.mark.parametrize("case", list(RAW_REQUESTS))
def test_a_malformed_http_request_gets_a_4xx_with_a_json_message_quickly(server, case):
    request, hang_up, status, fragment = RAW_REQUESTS[case]
    started = time.monotonic()
    got, headers, body = raw_exchange(server, request.encode(), hang_up=hang_up)
    assert got == status and fragment in body["error"]
    assert headers["Content-Type"] == "application/json"
    assert time.monotonic() - started < 10
    assert_still_serving(server)


def test_a_burst_of_connections_is_answered_not_dropped(server):
    # Connections opened faster than the server accepts them wait in the listen backlog; with
    # http.server's default of 5 most of these were dropped without an answer.
    host, port = server.url.removeprefix("http://").split(":")
    connections = [socket.create_connection((host, int(port)), timeout=10) for _ in range(100)]
    statuses = []
    for connection in connections:
        with connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = http.client.HTTPResponse(connection)
            try:
                answer.begin()
                statuses.append(answer.status)
            except (http.client.HTTPException, OSError) as exc:
                statuses.append(type(exc).__name__)
    assert statuses == [200] * len(connections)


def test_the_content_type_is_not_checked_as_tensorflow_serving_does_not(server):
    # Deliberately lenient: `curl -d` (the README's example) sends form-urlencoded; the body decides.
    answer = requests.post(f"{server.url}{PREDICT}", data=instances(SMALL_PNG), timeout=30,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    png = base64.b64decode(answer.json()["predictions"][0]["b64"])
    with PIL.Image.open(io.BytesIO(png)) as image:
        assert image.size == (32, 24)


# -- the configuration --------------------------------------------------------------------------

# id -> (colorbot.toml text or None for no file, environment, fragments of the one error line)
CONFIG_ERRORS = {
    "file-wrong-type": ('[download]\nmax_bytes = "lots"\n', {}, ["download.max_bytes", "from", "colorbot.toml"]),
    "env-wrong-type": ("", {"COLORBOT_REDDIT__LIMIT": "many"},
                       ["reddit.limit", "valid integer", "environment variable COLORBOT_REDDIT__LIMIT"]),
    "file-out-of-range": ("[reddit]\nlimit = 0\n", {}, ["reddit.limit", "greater than or equal to 1", "colorbot.toml"]),
    "env-not-a-choice": ("", {"COLORBOT_LOGGING__LEVEL": "LOUD"}, ["logging.level", "COLORBOT_LOGGING__LEVEL"]),
    "env-string-for-a-list": ("", {"COLORBOT_REDDIT__SUBREDDITS": "colorization"},
                              ["reddit.subreddits", "valid list", "COLORBOT_REDDIT__SUBREDDITS"]),
    "file-unknown-key": ('[reddit]\nclient_idd = "x"\n', {}, ["reddit.client_idd", "unknown key", "colorbot.toml"]),
    "env-unknown-key": ("", {"COLORBOT_DATABASE__URI": "sqlite:///x.db"},
                        ["database.uri", "unknown key", "COLORBOT_DATABASE__URI"]),
    "file-unknown-key-in-a-list": ('[[colorizer.models]]\nname = "a"\npat = "m"\n', {},
                                   ["colorizer.models.0.pat", "unknown key", "colorbot.toml"]),
    "file-model-without-source": ('[[colorizer.models]]\nname = "a"\n', {},
                                  ["colorizer.models.0", "exactly one of path, url or onnx", "colorbot.toml"]),
    "file-unknown-section": ("[nosection]\nx = 1\n", {}, ["nosection", "unknown key", "colorbot.toml"]),
    "env-unknown-section": ("", {"COLORBOT_NOSECTION__X": "1"},
                            ["nosection", "unknown key", "environment variable COLORBOT_NOSECTION__X"]),
    "file-section-not-a-table": ("reddit = 5\n", {}, ["reddit", "valid dictionary", "colorbot.toml"]),
    "env-into-a-non-table": ("reddit = 5\n", {"COLORBOT_REDDIT__LIMIT": "5"},
                             ["COLORBOT_REDDIT__LIMIT", "[reddit] is not a section"]),
    "env-without-a-section": ("", {"COLORBOT_LIMIT": "5"}, ["COLORBOT_LIMIT", "COLORBOT_<SECTION>__<KEY>"]),
    "file-bad-template": ('[reply]\ntemplate = "{nope}"\n', {}, ["reply.template", "{nope}", "colorbot.toml"]),
    "file-malformed-toml": ("[reddit\n", {}, ["colorbot.toml", "not valid TOML"]),
    "file-not-utf8": (b"\xff\xfe[reddit]\n", {}, ["colorbot.toml", "not valid TOML"]),
    "explicit-file-missing": (None, {"COLORBOT_CONFIG": "nope.toml"}, ["nope.toml", "no such configuration file"]),
    "file-is-a-directory": (None, {"COLORBOT_CONFIG": "."}, [".: cannot read the configuration file"]),
    # TOML has inf and nan; an interval of inf would schedule a job never, silently.
    "file-infinite-interval": ("[pipeline]\nreport_interval_h = inf\n", {},
                               ["pipeline.report_interval_h", "finite number", "colorbot.toml"]),
    "env-nan-threshold": ("", {"COLORBOT_EVAL__LOWE_RATIO": "nan"},
                          ["eval.lowe_ratio", "finite number", "COLORBOT_EVAL__LOWE_RATIO"]),
}


@pytest.fixture
def clean_environment(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("COLORBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_in_process(*args: str, env: dict[str, str]):
    result = CliRunner().invoke(cli, list(args), env=env, prog_name="colorbot")
    # Anything but a deliberate exit (SystemExit) would have been a traceback for the user.
    assert isinstance(result.exception, SystemExit), result.exception
    return result


def assert_one_line_error(exit_code: int, stderr: str, fragments: list[str]) -> None:
    assert exit_code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("colorbot: error: config: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_a_bad_configuration_is_one_line_naming_the_key_and_its_source(clean_environment, case):
    text, env, fragments = CONFIG_ERRORS[case]
    if text is not None:
        path = clean_environment / "colorbot.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = run_in_process("db", "stats", env=env)
    assert_one_line_error(result.exit_code, result.stderr, fragments)


def test_an_unreadable_configuration_file_is_one_line(clean_environment, monkeypatch):
    # Permissions do not stop root, so the refusal is made by the reading itself.
    (clean_environment / "colorbot.toml").write_text("[reddit]\n")
    real_read_text = Path.read_text

    def refuse(path, *args, **kwargs):
        if path.name == "colorbot.toml":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    result = run_in_process("db", "stats", env={})
    assert_one_line_error(result.exit_code, result.stderr, ["colorbot.toml: cannot read", "Permission denied"])


def test_a_config_option_naming_a_directory_is_a_usage_error(clean_environment):
    (clean_environment / "conf").mkdir()
    result = run_in_process("--config", "conf", "db", "stats", env={})
    assert result.exit_code == 2 and "'conf' is a directory" in result.stderr


@pytest.mark.parametrize(
    "value", ["12345678", "true", "1e3", '["x"]'], ids=["digits", "boolean", "float", "list"])
def test_text_settings_from_the_environment_stay_text(clean_environment, value):
    # A password, client id or user name that happens to parse as TOML is still that text.
    from colorbot.config import load_config

    config = load_config(None, environ={"COLORBOT_REDDIT__PASSWORD": value, "COLORBOT_REDDIT__CLIENT_ID": value,
                                        "COLORBOT_REDDIT__USERNAME": value})
    assert config.reddit.password.get_secret_value() == value
    assert config.reddit.client_id == value and config.reddit.username == value
    quoted = load_config(None, environ={"COLORBOT_REDDIT__USERNAME": '"bot"'})
    assert quoted.reddit.username == "bot"  # a quoted TOML string is still read as TOML


@pytest.mark.parametrize(
    "text, env, fragments",
    [
        ('[reddit]\nclient_idd = "x"\n', {}, ["reddit.client_idd", "unknown key", "colorbot.toml"]),
        ("", {"COLORBOT_DATABASE__URI": "sqlite:///x.db"}, ["database.uri", "COLORBOT_DATABASE__URI"]),
        ("", {"COLORBOT_CONFIG": "."}, ["cannot read the configuration file"]),
    ],
    ids=["file", "environment", "directory"],
)
def test_the_installed_command_prints_the_same_one_line(tmp_path, text, env, fragments):
    # The table above runs in-process; this is the same thing as a user's own process sees it.
    (tmp_path / "colorbot.toml").write_text(text)
    result = run_colorbot("db", "stats", cwd=tmp_path, env_extra=env)
    assert_one_line_error(result.returncode, result.stderr, fragments)
