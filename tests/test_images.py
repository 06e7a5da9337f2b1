"""colorizer.images, the one decoder: what it makes of awkward files, that every step sees the same
pixels, and that a corrupt file of any kind raises UnreadableImageError and nothing else."""

from __future__ import annotations

import base64
import io
import json
import random
import warnings
from datetime import datetime, timezone

import numpy as np
import PIL.Image
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.download import Fetcher
from bot.replay import ReplayServer, Snapshot
from bot.settings import DownloadSettings
from colorbot.pipeline import colorize_pending
from colorizer.client import ModelIdentity
from colorizer.images import (
    _PNG_BAND_BYTES, RefusedImageError, UnreadableImageError, _band_rows, decode, encode_png, examine, read_image,
)
from colorizer.serve import ModelServer, ServeSettings
from db import Colorization, Image, ImageRole, Post, PostImage, PostState
from db.store import advance_post, store_image
from eval.evaluate import original_and_human
from tests.factories import AWKWARD, SCENE, animation, corrupt_exif_jpeg, encoded, exif_rotated_jpeg, with_alpha

# -- what the decoder makes of each awkward file -------------------------------------------------


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("name", list(AWKWARD))
def test_every_awkward_file_shows_the_scene_upright(name):
    picture = read_image(AWKWARD[name])
    assert (picture.width, picture.height) == (96, 64) and picture.pixels.shape == (64, 96, 3)
    assert picture.pixels.dtype == np.uint8
    shown = slice(None), slice(96 // 2, None)  # the right half is opaque in the files with alpha
    assert np.abs(luma(picture.pixels[shown]) - luma(SCENE[shown])).mean() < 6.0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_put_on_white(mode):
    pixels = decode(with_alpha(SCENE, mode))
    assert (pixels[:, : 96 // 3] == 255).all()
    half = pixels[:, 96 // 3 + 2 : 96 // 2 - 2].astype(int)  # 50 % alpha: halfway between the photo and white
    expected = (SCENE[:, 96 // 3 + 2 : 96 // 2 - 2].astype(int) + 255) / 2
    if mode == "LA":
        expected = np.repeat(luma(SCENE[:, 96 // 3 + 2 : 96 // 2 - 2])[..., None] / 2 + 127.5, 3, axis=2)
    if mode != "P":  # the palette file has no half-transparent index
        assert np.abs(half - expected).mean() < 3.0


def test_sixteen_bits_are_scaled_not_clipped():
    pixels = decode(AWKWARD["gray16.png"])
    assert np.abs(pixels[..., 0] - luma(SCENE)).max() <= 1.0
    assert pixels.max() < 250  # clipped to 8 bits, almost every pixel would be 255


def test_an_animation_gives_its_first_frame():
    for fmt in ("GIF", "WEBP", "PNG"):
        assert np.abs(luma(decode(animation(SCENE, fmt))) - luma(SCENE)).mean() < 6.0, fmt


def test_a_corrupt_exif_block_is_an_unreadable_image_not_a_type_error():
    with pytest.raises(UnreadableImageError, match="EXIF block is corrupt"):
        decode(corrupt_exif_jpeg())


def test_examine_gives_the_upright_size_to_store():
    stored = examine(exif_rotated_jpeg(SCENE))
    assert (stored.format, stored.width, stored.height) == ("jpeg", 96, 64)
    with pytest.raises(UnreadableImageError, match="cannot read image"):
        examine(b"<html>404</html>")


def test_formats_pillow_could_open_but_the_project_does_not_are_refused():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"  # would start Ghostscript
    with pytest.raises(UnreadableImageError, match="cannot read image"):
        decode(eps)
    assert read_image(encoded(PIL.Image.fromarray(SCENE), "TIFF")).format == "tiff"  # a local scan may be TIFF


def test_the_pixel_cap_is_a_refusal():
    with pytest.raises(RefusedImageError, match="over the limit of 1,000 pixels"):
        decode(encoded(PIL.Image.fromarray(SCENE), "PNG"), max_pixels=1000)


# -- every step sees the same pixels -----------------------------------------------------------


class Recording:
    """A model that returns its input unchanged and keeps what it was given."""

    identity = ModelIdentity(name="identity", version="1")

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def colorize(self, images):
        self.seen.extend(image.copy() for image in images)
        return [image.copy() for image in images]


def stored_post(sessions, data: bytes) -> int:
    """A fetched post whose original and human colorization are both ``data``."""
    with sessions.begin() as session:
        post = Post(reddit_id="awk", subreddit="colorization", created_utc=datetime.now(timezone.utc))
        session.add(post)
        session.flush()
        image = store_image(session, examine(data))
        for role in (ImageRole.ORIGINAL, ImageRole.COLORIZATION):
            session.add(PostImage(post_id=post.id, image_id=image.id, role=role.value))
        advance_post(post, PostState.FETCHED)
        return post.id


@pytest.fixture(scope="module")
def replay():
    with ReplayServer(Snapshot()) as running:
        yield running


@pytest.fixture(scope="module")
def echo_server():
    with ModelServer("echo", "1", lambda images: list(images), ServeSettings(port=0)) as running:
        yield running


@pytest.mark.parametrize("name", list(AWKWARD))
def test_every_step_sees_the_same_pixels(name, sessions, replay, echo_server):
    data = AWKWARD[name]
    reference = decode(data)

    replay.add_image(name, data)
    fetcher = Fetcher(DownloadSettings(**replay.download_settings(timeout_s=5.0, retries=0)))
    downloaded = fetcher.fetch(f"{replay.base_url}/i/{name}")  # pairing measures these very pixels
    assert (downloaded.width, downloaded.height) == reference.shape[1::-1]
    np.testing.assert_array_equal(downloaded.pixels, reference)

    post_id = stored_post(sessions, data)
    model = Recording()
    colorize_pending(sessions, [model])
    np.testing.assert_array_equal(model.seen[0], reference)

    with sessions() as session:
        post = session.get(Post, post_id)
        assert post.state == PostState.COLORIZED.value
        stored = session.scalar(select(Image).join(PostImage).where(PostImage.post_id == post_id))
        assert (stored.width, stored.height) == reference.shape[1::-1]
        original, human = original_and_human(post)  # what evaluate aligns and the report shows
        machine = decode(session.scalar(select(Colorization).where(Colorization.post_id == post_id)).image.data)
    for pixels in (original, human, machine):  # the gray baseline is the original: it starts where the model did
        np.testing.assert_array_equal(pixels, reference)

    body = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]})
    answer = requests.post(f"{echo_server.url}/v1/models/echo:predict", data=body, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(decode(base64.b64decode(answer.json()["predictions"][0]["b64"])), reference)


def test_the_model_server_answers_a_corrupt_exif_block_with_400(echo_server):
    body = json.dumps({"instances": [{"b64": base64.b64encode(corrupt_exif_jpeg()).decode()}]})
    answer = requests.post(f"{echo_server.url}/v1/models/echo:predict", data=body, timeout=30)
    assert answer.status_code == 400 and "EXIF block is corrupt" in answer.json()["error"]
    assert requests.get(f"{echo_server.url}/healthz", timeout=10).status_code == 200


# -- no corrupt file escapes as anything but UnreadableImageError --------------------------------


def _exif_jpeg() -> bytes:
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "a photo"
    exif[0x011A] = 72.0
    return encoded(PIL.Image.fromarray(SCENE[:24, :32]), "JPEG", quality=80, exif=exif.tobytes())


def _seeds() -> dict[str, bytes]:
    small = PIL.Image.fromarray(SCENE[:24, :32])
    frames = [small, PIL.Image.fromarray(255 - SCENE[:24, :32])]
    return {
        "jpeg-exif": _exif_jpeg(),
        "jpeg-progressive": encoded(small, "JPEG", quality=80, progressive=True),
        "jpeg-cmyk": encoded(small.convert("CMYK"), "JPEG"),
        "png": encoded(small, "PNG"),
        "png-la": encoded(small.convert("LA"), "PNG"),
        "png-palette": encoded(small.convert("P"), "PNG", transparency=3),
        "png-16": encoded(PIL.Image.fromarray((luma(SCENE[:24, :32]) * 257).astype(np.uint16)), "PNG"),
        "apng": encoded(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "webp": encoded(small, "WEBP"),
        "webp-lossless": encoded(small, "WEBP", lossless=True),
        "webp-animated": encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "gif": encoded(small, "GIF"),
        "gif-animated": encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    }


SEEDS = _seeds()
FUZZ_EXAMPLES = 3000


def test_every_fuzz_seed_decodes():
    for name, data in SEEDS.items():
        assert sorted(decode(data).shape) == [3, 24, 32], name  # the EXIF one turned upright


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, byte overwrites, a truncation, a chunk spliced in from elsewhere or cut out;
    in a file with EXIF, half the time a damaged EXIF tag (its type, count or offset)."""
    out = bytearray(data)
    exif = data.find(b"Exif\x00\x00")
    if exif >= 0 and rng.random() < 0.5:
        tags = exif + 6 + 10  # the first IFD's entries, 12 bytes each, after the TIFF header and count
        entry = tags + 12 * rng.randrange(3)
        if rng.random() < 0.5:  # another of the twelve TIFF types: the value is then read as that type
            out[entry + 2 : entry + 4] = bytes([0, rng.randint(1, 12)])
        else:
            out[entry + rng.choice([5, 7, 8, 11])] = rng.randrange(256)
        return bytes(out)
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if not out:
            break
        if kind < 0.35:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind < 0.55:
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(len(out))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif kind < 0.7:
            del out[rng.randrange(len(out)):]
        elif kind < 0.85:
            start, length = rng.randrange(len(out)), rng.randint(1, 64)
            at = rng.randrange(len(out))
            out[at:at] = out[start:start + length]
        else:
            start = rng.randrange(len(out))
            del out[start:start + rng.randint(1, 64)]
    return bytes(out)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(SEEDS)), mutation=st.integers(0, 2**32 - 1))
def test_a_mutated_file_decodes_or_raises_unreadable_image_error(seed, mutation):
    data = mutate(SEEDS[seed], random.Random(mutation))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about the damage it skips over
        try:
            pixels = decode(data, max_pixels=4_000_000)
        except UnreadableImageError:
            return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3


# -- the one PNG encoder ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5), (64, 96, 2), (768, 1024, 3), (1500, 1501, 4), (3001, 17, 3)])
def test_encode_png_is_lossless_in_one_band_or_many(shape):
    # Smooth rows with noise, as a photo's: the Up filter's differences straddle 0 and wrap around.
    rng = np.random.default_rng(sum(shape))
    pixels = (np.cumsum(rng.integers(-3, 4, shape), axis=0) + rng.integers(0, 256, shape[1:])).astype(np.uint8)
    decoded = np.asarray(PIL.Image.open(io.BytesIO(encode_png(pixels))))
    assert decoded.shape == pixels.shape and (decoded == pixels).all()


@pytest.mark.parametrize("height, row_bytes, workers, bands", [
    (768, 3072, 2, 4),  # 2.3 MiB: three bands of 1 MiB would leave one worker idle for the third
    (3000, 12000, 2, 36),
    (3000, 12000, 4, 36),
    (3000, 12000, 3, 36),
    (224, 672, 2, 1),  # under a band: one stream, no pool
    (1, 3, 4, 1),
])
def test_png_bands_are_equal_and_a_multiple_of_the_workers(height, row_bytes, workers, bands):
    rows = _band_rows(height, row_bytes, workers)
    assert -(-height // rows) == bands
    assert rows * row_bytes <= _PNG_BAND_BYTES * 1.01 or bands == 1
