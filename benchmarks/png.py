"""Size and speed of the deflate libraries that could write colorbot's PNGs, on real colorizations.

Each photo is colorized by a model (the shipped default unless --model), Up-filtered as
colorizer/images.py filters, and deflated in one stream (one thread) by each candidate; the figures
are totals over all photos, in one run, so the speeds are comparable with each other:

    python benchmarks/png.py PHOTO_FOLDER [--limit 40] [--model colorizer/default_model]

Without a folder, scikit-image's sample photos are used (a few, so a rough figure).

Measured 2026-12-03 on the 2-core machine, 33 photos (20 of BSDS500 at 481x321 and 13 old black-and-white
photos of 0.4-1.2 MP; 38 MB of filtered rows), default model:

    deflate         output / raw   MB/s of raw
    zlib-ng 1          0.709          157
    zlib-ng 2          0.539           89     (what colorizer/images.py used before)
    isal 1             0.560          304
    isal 2             0.551          295     <- colorizer/images.py
    isal 3             0.548          192

ISA-L's level 2 writes files 2% larger than zlib-ng's level 2 at 3.3 times the speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CANDIDATES = [("zlib-ng", 1), ("zlib-ng", 2), ("isal", 1), ("isal", 2), ("isal", 3)]


def deflate(library: str, level: int, data: np.ndarray) -> bytes:
    if library == "isal":
        from isal import isal_zlib as module
    else:
        from zlib_ng import zlib_ng as module
    compressor = module.compressobj(level, module.DEFLATED, -15, 9)
    return compressor.compress(data) + compressor.flush(module.Z_FINISH)


def photos(folder: str | None, limit: int):
    from colorizer.images import decode

    if folder is None:
        import skimage.data

        for name in ("astronaut", "coffee", "chelsea", "rocket"):  # colour photos: Colorizer takes RGB
            yield np.asarray(getattr(skimage.data, name)())
        return
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    for path in paths[:limit]:
        yield decode(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="photos to colorize (searched recursively)")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--model", default="colorizer/default_model")
    args = parser.parse_args()

    from colorizer.export import ExportedModel
    from colorizer.images import up_filtered

    model = ExportedModel(args.model)
    raw = 0
    sizes = dict.fromkeys(CANDIDATES, 0)
    seconds = dict.fromkeys(CANDIDATES, 0.0)
    count = 0
    for rgb in photos(args.folder, args.limit):
        colorized = model.colorize([rgb])[0]
        filtered = up_filtered(colorized.reshape(colorized.shape[0], -1))
        raw += filtered.size
        count += 1
        for library, level in CANDIDATES:
            started = time.perf_counter()
            sizes[library, level] += len(deflate(library, level, filtered))
            seconds[library, level] += time.perf_counter() - started
    print(f"{count} photos, {raw / 1e6:.0f} MB of filtered rows")
    print("deflate       output / raw   MB/s of raw")
    for library, level in CANDIDATES:
        print(f"{library:>8} {level}      {sizes[library, level] / raw:.3f}        "
              f"{raw / seconds[library, level] / 1e6:5.0f}")


if __name__ == "__main__":
    main()
