"""Which way of bringing 224 px chroma up to full resolution loses least: bilinear or guided.

For each held-out colour photo, its own chroma is shrunk to the network's 224x224 (as if the
network predicted it perfectly) and brought back up with each method; the error against the
photo's real full-resolution chroma is what the upsampling alone costs.

    python benchmarks/upsampling.py PHOTO_FOLDER [--limit 100]
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf

from colorizer.color import rgb_to_yuv, yuv_to_rgb_in_gamut
from colorizer.data import find_images
from colorizer.inference import UPSAMPLING_METHODS, load_rgb, upsample_chroma

SIZE = 224


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    errors = {method: [] for method in UPSAMPLING_METHODS}
    psnr = {method: [] for method in UPSAMPLING_METHODS}
    for path in find_images(args.folder)[: args.limit]:
        rgb = tf.constant(load_rgb(path), tf.float32)[None] / 255.0
        yuv = rgb_to_yuv(rgb)
        y_full, uv_full = yuv[..., :1], yuv[..., 1:]
        y_small = tf.image.resize(y_full, (SIZE, SIZE), method="area", antialias=True)
        uv_small = tf.image.resize(uv_full, (SIZE, SIZE), method="area", antialias=True)
        for method in UPSAMPLING_METHODS:
            uv = upsample_chroma(y_small, uv_small, y_full, method)
            errors[method].append(float(tf.reduce_mean(tf.norm(uv - uv_full, axis=-1))))
            out = yuv_to_rgb_in_gamut(y_full, uv)
            psnr[method].append(float(tf.image.psnr(out, rgb, max_val=1.0)[0]))
    count = len(errors["bilinear"])
    print(f"{count} photos from {args.folder}, chroma at {SIZE}x{SIZE} brought back to full size")
    for method in UPSAMPLING_METHODS:
        print(f"{method:>9}: mean UV error {np.mean(errors[method]):.5f}, RGB PSNR {np.mean(psnr[method]):.2f} dB")
    wins = sum(g < b for g, b in zip(errors["guided"], errors["bilinear"]))
    print(f"guided beats bilinear on {wins} of {count} photos")


if __name__ == "__main__":
    main()
