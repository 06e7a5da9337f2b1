"""Pooling photo folders: byte and look-alike duplicates and grayscale photos dropped, counted, cached."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from colorizer import pool
from colorizer.pool import POOL_FILE, difference_hash, pooled_photos, read_manifest
from tests.factories import synthetic_photo


def photo(seed: int) -> np.ndarray:
    return synthetic_photo(np.random.default_rng(seed), 96)


def natural_photo(seed: int) -> np.ndarray:
    """Smooth random colour fields: distinct photos whose luminance gradients differ everywhere."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(PIL.Image.fromarray(small).resize((128, 96), PIL.Image.Resampling.BICUBIC))


@pytest.fixture
def two_collections(tmp_path) -> tuple[Path, Path]:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    for i in range(4):
        PIL.Image.fromarray(natural_photo(i)).save(first / f"{i}.png")
    shutil.copyfile(first / "0.png", second / "copy-of-0.png")  # same bytes
    PIL.Image.fromarray(natural_photo(1)).resize((64, 48)).save(second / "small-1.jpg", quality=90)  # same look
    PIL.Image.fromarray(natural_photo(2)).convert("L").convert("RGB").save(second / "gray.png")
    (second / "broken.jpg").write_bytes(b"not a jpeg")
    PIL.Image.fromarray(natural_photo(9)).save(second / "new.png")
    return first, second


def test_duplicates_and_grayscale_photos_are_dropped_and_counted(two_collections, tmp_path):
    first, second = two_collections
    result = pooled_photos([str(first), str(second)], tmp_path)
    assert [Path(p).name for p in result.paths] == ["0.png", "1.png", "2.png", "3.png", "new.png"]
    assert result.totals() == {"found": 9, "unreadable": 1, "grayscale": 1, "duplicate_bytes": 1,
                               "duplicate_look": 1, "kept": 5}
    assert result.counts[str(second.resolve())].kept == 1
    saved = json.loads((tmp_path / POOL_FILE).read_text())
    assert saved["totals"]["kept"] == 5 and len(saved["paths"]) == 5


def test_a_resumed_run_reads_the_pool_instead_of_scanning(two_collections, tmp_path, monkeypatch):
    first, second = two_collections
    scanned = pooled_photos([str(first), str(second)], tmp_path)
    monkeypatch.setattr(pool, "scan_pool", lambda folders, workers=None: pytest.fail("scanned again"))
    assert pooled_photos([str(first), str(second)], tmp_path).paths == scanned.paths
    monkeypatch.undo()
    assert len(pooled_photos([str(first)], tmp_path).paths) == 4  # other folders: a new scan


def test_the_difference_hash_ignores_size_and_compression_but_not_content():
    original = natural_photo(3)
    resized = np.asarray(PIL.Image.fromarray(original).resize((200, 150)))
    assert difference_hash(original) == difference_hash(resized)
    assert difference_hash(original) != difference_hash(natural_photo(4))
    assert len(difference_hash(photo(1))) == 16


def test_a_manifest_lists_folders_with_comments_and_relative_paths(two_collections, tmp_path):
    first, second = two_collections
    manifest = tmp_path / "photos.txt"
    manifest.write_text(f"# collections\na\n\n{second}   # absolute, with a comment\n")
    assert read_manifest(manifest) == [str(tmp_path / "a"), str(second)]
    manifest.write_text("a\nmissing-folder\n")
    with pytest.raises(FileNotFoundError, match="photos.txt:2: not a folder: missing-folder"):
        read_manifest(manifest)
    manifest.write_text("# nothing\n")
    with pytest.raises(ValueError, match="lists no folders"):
        read_manifest(manifest)


def test_numpy_yuv_matches_tensorflows_and_decoding_never_needs_more_than_the_smallest_crop():
    import tensorflow as tf

    from colorizer.data import decode_side, rgb_to_yuv_array

    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_yuv_array(rgb), tf.image.rgb_to_yuv(rgb / 255.0).numpy(), atol=1e-6)
    assert decode_side(224, 1.0) == 259 and decode_side(224, 0.35) == 438 and decode_side(224, 0.35, legacy=True) == 448
