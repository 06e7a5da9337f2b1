"""How an exported model colorizes held-out colour photos, next to the gray baseline.

A thin wrapper over ``colorbot bench`` (eval/bench.py): each photo is turned gray and colorized at
full resolution, every metric is computed against the true photo for the model and for the gray
baseline, and the report goes to --out (rerunning into it resumes). This prints the figures of
colorizer/MODEL_CARD.md (means with 95 % intervals, paired differences) and can write a picture
of ten photos: input | model | truth.

    python benchmarks/heldout.py MODEL_DIR PHOTO_FOLDER --out DIR [--limit 814] [--picture card.jpg]
        [--beside EARLIER_OUT_DIR]

``--beside`` takes another model's --out folder from an earlier run over the same photos (the model
that is being replaced, say): it prints this model's paired differences against that one, and the
picture becomes input | this model | that model | truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import PIL.Image

from colorizer.client import LocalColorizer
from colorizer.data import find_images
from colorizer.inference import load_rgb
from eval.bench import ResultStore, bench_metric_info, paired_against, run_bench

SHOWN = ("score", "uv_error", "saturation_ratio", "colorfulness_machine", "colorfulness_human", "delta_e_2000", "psnr", "auc")
PAIRED = ("score", "uv_error", "delta_e_2000", "psnr", "auc")
PICTURED = 10


def picture(rows: list[list[Path]], path: str, height: int = 160) -> None:
    """One strip of images per row, rows stacked, 8 px of white between everything."""
    tiles = []
    for row in rows:
        scaled = []
        for file in row:
            with PIL.Image.open(file) as image:
                scaled.append(image.convert("RGB").resize((round(image.width * height / image.height), height)))
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
    parser.add_argument("--out", type=Path, required=True, help="the bench report folder (reruns resume)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--picture", default=None, help="write input | model | truth for the first ten photos")
    parser.add_argument("--beside", type=Path, default=None,
                        help="another model's --out folder over the same photos: paired differences and a picture column")
    args = parser.parse_args()

    model = LocalColorizer(args.model_dir)
    photos = find_images(args.folder)[: args.limit]
    outcome = run_bench(photos, [model], args.out, decode=load_rgb, progress=sys.stderr.isatty(), gallery=PICTURED)
    report = json.loads((args.out / "summary.json").read_text())
    name = model.identity.name
    print(f"{name} {model.identity.version}: {report['photos']} held-out photos ({outcome.skipped} gray skipped, "
          f"{outcome.failed} failed)")
    for shown in (name, "gray"):
        metrics = report["models"][shown]["metrics"]
        print(f"  {shown:>5}: " + ", ".join(
            f"{metric} {metrics[metric]['mean']:.4g} ± {(metrics[metric]['high'] - metrics[metric]['mean']):.2g}"
            for metric in SHOWN))
    for metric in PAIRED:
        paired = report["models"][name]["vs_gray"][metric]
        print(f"  model − gray {metric}: {paired['mean']:+.4g} ± {paired['high'] - paired['mean']:.2g} "
              f"({paired['relative']:+.1%}); model better on {paired['better_share']:.0%} of photos")
    metrics = report["models"][name]["metrics"]
    print(f"  mean chroma: model {metrics['chroma_machine']['mean']:.2f}, truth {metrics['chroma_human']['mean']:.2f} "
          f"({metrics['chroma_machine']['mean'] / metrics['chroma_human']['mean']:.0%} of the truth's)")
    earlier = beside_model(args.out, name, args.beside) if args.beside else None
    if args.picture:
        rows = []
        for row in report["gallery"]:
            files = [row["input"], row["machines"][name]]
            if earlier:
                files.append(earlier["gallery"].get(row["photo"]))
            files.append(row["truth"])
            if all(files):
                rows.append([(args.beside if earlier and number == 2 else args.out) / file
                             for number, file in enumerate(files)])
        picture(rows, args.picture)


def results(folder: Path, model: str | None = None) -> pd.DataFrame:
    """The per-photo results of one bench folder, of one model (by name) or of its first non-gray one."""
    with ResultStore(folder / "results.jsonl") as store:
        records = [record for record in store.records() if record["kind"] == "result"]
    table = pd.DataFrame.from_records([{**record, **record["metrics"]} for record in records])
    if model is None:
        model = next(name for name in table["model"] if name != "gray")
    return table[table["model"] == model].drop_duplicates(["photo", "sha256"])


def beside_model(out: Path, name: str, beside: Path) -> dict:
    """Print this run's model against the model of an earlier run over the same photos."""
    ours, theirs = results(out, name), results(beside)
    info = bench_metric_info()
    label = f"{theirs['model'].iloc[0]} {theirs['version'].iloc[0]}"
    paired = paired_against(ours, theirs, list(PAIRED), info)
    print(f"  against {label} ({len(ours.merge(theirs, on=['photo', 'sha256']))} photos in both runs):")
    for metric, entry in paired.items():
        print(f"    model − {label} {metric}: {entry['mean']:+.4g} ± {entry['high'] - entry['mean']:.2g} "
              f"({entry['relative']:+.1%}); model better on {entry['better_share']:.0%} of photos")
    summary = json.loads((beside / "summary.json").read_text())
    model = theirs["model"].iloc[0]
    return {"gallery": {row["photo"]: row["machines"].get(model) for row in summary["gallery"]}}


if __name__ == "__main__":
    main()
