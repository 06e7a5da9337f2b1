"""How well each metric agrees with human judgement of colour: Kendall's tau on the HECD ratings.

The Human Evaluated Colourisation Dataset (Mullery and Whelan 2022, github.com/seanmullery/HECD)
has, per scene, a ground-truth photo and recolourisations rated for naturalness (mean z-scores
from Mechanical Turk). For every rated row this runs ``colorbot compare GROUND_TRUTH RECOLOURED
--aligned --json`` (one call per scene) and prints Kendall's tau of every metric against the mean
z-scores over all rows, as the dataset's own comparison does. A metric that is better when lower
agrees when its tau is negative.

    python benchmarks/hecd_tau.py --hecd PATH/TO/HECD [--scenes 015004,022093] [--out results.jsonl]

PATH/TO/HECD holds ``mean_zscores.csv`` (columns "Ground Truth File", "Recolour File", "Mean zScore")
and ``images/``. The dataset is not part of colorbot; it is only read where you point this script.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from scipy.stats import kendalltau


def rated_rows(hecd: Path, scenes: set[str] | None) -> dict[str, dict[str, float]]:
    """Ground-truth file -> {recoloured file: mean z-score}."""
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    with open(hecd / "mean_zscores.csv", newline="") as file:
        for row in csv.DictReader(file):
            truth = row["Ground Truth File"]
            if scenes is None or truth.split("_")[0] in scenes:
                rows[truth][row["Recolour File"]] = float(row["Mean zScore"])
    return rows


def compare_scene(images: Path, truth: str, recoloured: list[str]) -> list[dict]:
    command = [sys.executable, "-m", "colorbot", "compare", str(images / truth),
               *(str(images / name) for name in recoloured), "--aligned", "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        failures = [line for line in done.stderr.splitlines() if line.startswith("colorbot compare:")]
        raise SystemExit(f"colorbot compare failed on {truth} (exit {done.returncode}): {failures or done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hecd", type=Path, required=True, help="folder with mean_zscores.csv and images/")
    parser.add_argument("--scenes", default=None, help="comma-separated scene numbers [default: every scene rated]")
    parser.add_argument("--out", type=Path, default=None, help="also write every row's metrics and z-score here")
    args = parser.parse_args()
    scenes = set(args.scenes.split(",")) if args.scenes else None

    rows = rated_rows(args.hecd, scenes)
    measured = []
    for truth, ratings in sorted(rows.items()):
        names = sorted(ratings)
        results = compare_scene(args.hecd / "images", truth, names)
        by_path = {Path(result["candidate"]).name: result for result in results}
        for name in names:
            measured.append({"truth": truth, "recoloured": name, "z": ratings[name], **by_path[name]})
        print(f"{truth}: {len(names)} rows", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as file:
            for row in measured:
                file.write(json.dumps(row) + "\n")

    z = [row["z"] for row in measured]
    metrics = [key for key in measured[0] if key not in ("truth", "recoloured", "z", "candidate")]
    print(f"Kendall tau against mean naturalness z-score, {len(measured)} rows, {len(rows)} scenes")
    print(f"{'metric':24s} {'tau':>7s}")
    for name in sorted(metrics, key=lambda key: -abs(_tau([row[key] for row in measured], z))):
        print(f"{name:24s} {_tau([row[name] for row in measured], z):+7.3f}")


def _tau(values: list, z: list[float]) -> float:
    pairs = [(value, score) for value, score in zip(values, z) if value is not None]
    return float(kendalltau([value for value, _ in pairs], [score for _, score in pairs])[0])


if __name__ == "__main__":
    main()
