"""How an exported model colorizes held-out colour photos, next to the gray baseline.

Each photo is turned gray and colorized at full resolution; every metric of the report
(eval/metrics.py) is computed against the true photo, for the model and for the gray baseline
(the gray input itself). Prints means with 95 % intervals and writes a picture of ten photos:
input | model | truth. These are the figures of colorizer/MODEL_CARD.md.

    python benchmarks/heldout.py MODEL_DIR PHOTO_FOLDER [--limit 814] [--picture card.jpg] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import PIL.Image

from colorizer.client import LocalColorizer
from colorizer.data import find_images, is_grayscale
from colorizer.inference import load_rgb
from eval.metrics import METRICS, measure, prepare_reference

SHOWN = ("uv_error", "saturation_ratio", "colorfulness_machine", "colorfulness_human", "delta_e_2000", "psnr", "auc")


def gray_of(rgb: np.ndarray) -> np.ndarray:
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.round(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def picture(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: str, height: int = 160) -> None:
    tiles = []
    for row in rows:
        scaled = [PIL.Image.fromarray(image).resize((round(image.shape[1] * height / image.shape[0]), height))
                  for image in row]
        strip = PIL.Image.new("RGB", (sum(t.width for t in scaled) + 8 * (len(scaled) - 1), height), "white")
        x = 0
        for tile in scaled:
            strip.paste(tile, (x, 0))
            x += tile.width + 8
        tiles.append(strip)
    canvas = PIL.Image.new("RGB", (max(t.width for t in tiles), sum(t.height + 8 for t in tiles)), "white")
    y = 0
    for tile in tiles:
        canvas.paste(tile, (0, y))
        y += tile.height + 8
    canvas.save(path, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("folder")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--picture", default=None, help="write input | model | truth for the first ten photos")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()

    model = LocalColorizer(args.model_dir)
    values: dict[str, dict[str, list[float]]] = {"model": {}, "gray": {}}
    rows, used, skipped = [], 0, 0
    for path in find_images(args.folder)[: args.limit]:
        truth = load_rgb(path)
        if is_grayscale(truth):
            skipped += 1
            continue
        gray = gray_of(truth)
        machine = model.colorize([gray])[0]
        reference = prepare_reference(truth, np.ones(truth.shape[:2], bool))
        for name, output in (("model", machine), ("gray", gray)):
            for metric, value in measure(output, reference).items():
                values[name].setdefault(metric, []).append(value)
        if len(rows) < 10:
            rows.append((gray, machine, truth))
        used += 1
    print(f"{model.identity.name} {model.identity.version}: {used} held-out photos ({skipped} grayscale skipped)")
    summary = {}
    for name in ("model", "gray"):
        summary[name] = {}
        for metric in SHOWN:
            data = np.array([v for v in values[name][metric] if np.isfinite(v)])
            half = 1.96 * data.std(ddof=1) / np.sqrt(len(data)) if len(data) > 1 else float("nan")
            summary[name][metric] = {"mean": float(data.mean()), "ci95": float(half), "n": int(len(data))}
        print(f"  {name:>5}: " + ", ".join(f"{metric} {s['mean']:.4g} ± {s['ci95']:.2g}"
                                          for metric, s in summary[name].items()))
    # The same photos under both: the paired difference says more than two overlapping intervals.
    paired = {}
    for metric, lower_is_better in (("uv_error", True), ("delta_e_2000", True), ("psnr", False), ("auc", False)):
        model_values, gray_values = np.array(values["model"][metric]), np.array(values["gray"][metric])
        keep = np.isfinite(model_values) & np.isfinite(gray_values)
        difference = model_values[keep] - gray_values[keep]
        better = difference < 0 if lower_is_better else difference > 0
        paired[metric] = {"mean_difference": float(difference.mean()),
                          "ci95": float(1.96 * difference.std(ddof=1) / np.sqrt(len(difference))),
                          "relative": float(difference.mean() / gray_values[keep].mean()),
                          "model_better_share": float(better.mean())}
        print(f"  model − gray {metric}: {difference.mean():+.4g} ± {paired[metric]['ci95']:.2g} "
              f"({paired[metric]['relative']:+.1%}); model better on {better.mean():.0%} of photos")
    truth_chroma = np.mean(values["model"]["chroma_human"])
    print(f"  mean chroma: model {np.mean(values['model']['chroma_machine']):.2f}, truth {truth_chroma:.2f} "
          f"({np.mean(values['model']['chroma_machine']) / truth_chroma:.0%} of the truth's)")
    if args.picture:
        picture(rows, args.picture)
    if args.json_path:
        with open(args.json_path, "w") as file:
            json.dump({"photos": used, "skipped_grayscale": skipped, "summary": summary, "paired": paired,
                       "metrics": {k: v.label for k, v in METRICS.items()}}, file, indent=2)


if __name__ == "__main__":
    main()
