"""Which way of bringing 224 px chroma up to full resolution loses least: bilinear or guided.

For each held-out colour photo, its own chroma is shrunk to the network's 224x224 (as if the
network predicted it perfectly) and brought back up with each method; the error against the
photo's real full-resolution chroma is what the upsampling alone costs. The RGB PSNR is given for
the TensorFlow ops the SavedModel runs and for the NumPy/OpenCV path in-process colorization runs.

    python benchmarks/upsampling.py PHOTO_FOLDER [--limit 100]
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf

from colorizer.color import rgb_to_yuv, yuv_to_rgb_in_gamut
from colorizer.data import find_images
from colorizer.inference import UPSAMPLING_METHODS, finish, full_luminance, load_rgb, upsample_chroma

SIZE = 224


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    errors = {method: [] for method in UPSAMPLING_METHODS}
    psnr = {method: [] for method in UPSAMPLING_METHODS}
    psnr_8bit = {method: [] for method in UPSAMPLING_METHODS}
    psnr_in_process = {method: [] for method in UPSAMPLING_METHODS}
    for path in find_images(args.folder)[: args.limit]:
        pixels = load_rgb(path)
        rgb = tf.constant(pixels, tf.float32)[None] / 255.0
        yuv = rgb_to_yuv(rgb)
        y_full, uv_full = yuv[..., :1], yuv[..., 1:]
        y_small = tf.image.resize(y_full, (SIZE, SIZE), method="area", antialias=True)
        uv_small = tf.image.resize(uv_full, (SIZE, SIZE), method="area", antialias=True)
        for method in UPSAMPLING_METHODS:
            uv = upsample_chroma(y_small, uv_small, y_full, method)
            errors[method].append(float(tf.reduce_mean(tf.norm(uv - uv_full, axis=-1))))
            out = yuv_to_rgb_in_gamut(y_full, uv)
            psnr[method].append(float(tf.image.psnr(out, rgb, max_val=1.0)[0]))
            out_8bit = np.round(out[0].numpy() * 255).astype(np.uint8)  # what a colorization stores
            psnr_8bit[method].append(float(tf.image.psnr(out_8bit, tf.cast(pixels, tf.uint8), max_val=255)))
            y255 = full_luminance(pixels)  # the photo's own Y, as y_full
            in_process = finish(y255, y_small.numpy()[0, ..., 0], uv_small.numpy()[0], method)
            psnr_in_process[method].append(float(tf.image.psnr(in_process, tf.cast(pixels, tf.uint8), max_val=255)))
    count = len(errors["bilinear"])
    print(f"{count} photos from {args.folder}, chroma at {SIZE}x{SIZE} brought back to full size")
    for method in UPSAMPLING_METHODS:
        print(f"{method:>9}: mean UV error {np.mean(errors[method]):.5f}, RGB PSNR {np.mean(psnr[method]):.2f} dB "
              f"(in 8 bits: graph {np.mean(psnr_8bit[method]):.2f} dB, in-process path {np.mean(psnr_in_process[method]):.2f} dB)")
    wins = sum(g < b for g, b in zip(errors["guided"], errors["bilinear"]))
    print(f"guided beats bilinear on {wins} of {count} photos")


if __name__ == "__main__":
    main()
