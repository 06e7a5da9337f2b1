"""Peak memory of ``colorbot bench`` at 50 and at 200 photos: it must not grow with the photo count.

Makes 200 synthetic colour photos (or takes the first 200 of a folder you give), then runs
``colorbot bench`` over the first 50 and over all 200, each in its own process into a fresh output
folder, and reports each one's peak resident memory (the kernel's ru_maxrss for that child alone),
its time and the ratio of the two peaks. The run passes when the ratio is within 10 %.

    python benchmarks/bench_memory.py [--photos FOLDER] [--size 512] [--model MODEL_DIR]... [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.factories import synthetic_photo  # noqa: E402 - the tests' photo factory

COUNTS = (50, 200)
TOLERANCE = 0.10
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def synthetic_folder(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """``count`` synthetic colour photos of ``size`` px, a quarter of them landscape 4:3."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for number in range(count):
        image = PIL.Image.fromarray(synthetic_photo(rng, size))
        if number % 4 == 0:
            image = image.resize((size, size * 3 // 4))
        path = folder / f"{number:04d}.jpg"
        image.save(path, quality=92)
        paths.append(path)
    return paths


def photos_of(folder: Path, count: int) -> list[Path]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if len(paths) < count:
        raise SystemExit(f"{folder} has {len(paths)} photos; the benchmark needs {count}")
    return paths[:count]


def bench_once(photos: list[Path], out: Path, models: list[str]) -> dict[str, float]:
    """Run ``colorbot bench`` in a child process; its peak RSS (MiB), seconds and exit code."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "colorbot", "bench", *map(str, photos), "--out", str(out), "--no-progress"]
    for model in models:
        command += ["--model", model]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORBOT_")}
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the largest of all children so far.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"colorbot bench exited {code}:\n{stderr.decode(errors='replace')[-2000:]}")
    stored = sum(1 for _ in open(out / "results.jsonl"))
    return {"photos": len(photos), "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds,
            "exit_code": code, "results": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=None, help="folder of colour photos [default: synthetic]")
    parser.add_argument("--size", type=int, default=512, help="side of the synthetic photos")
    parser.add_argument("--model", action="append", default=[], help="exported model folder [default model]")
    parser.add_argument("--workdir", type=Path, default=None, help="where photos and outputs go [a temporary folder]")
    parser.add_argument("--json", dest="json_path", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    photos = (photos_of(args.photos, max(COUNTS)) if args.photos
              else synthetic_folder(workdir / "photos", max(COUNTS), args.size))
    runs = [bench_once(photos[:count], workdir / f"out-{count}", args.model) for count in COUNTS]
    ratio = runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    for run in runs:
        print(f"{run['photos']:>4} photos: peak RSS {run['peak_rss_mib']:.0f} MiB, {run['seconds']:.0f} s "
              f"({run['photos'] / run['seconds']:.2f} photos/s), {run['results']} results, exit {run['exit_code']}")
    verdict = "within" if abs(ratio - 1) <= TOLERANCE else "NOT within"
    print(f"peak RSS {COUNTS[1]} / {COUNTS[0]} photos: {ratio:.3f} ({verdict} {TOLERANCE:.0%})")
    if args.json_path:
        args.json_path.write_text(json.dumps({"runs": runs, "ratio": ratio, "photos": str(args.photos or "synthetic"),
                                              "models": args.model or ["default"]}, indent=2))
    if abs(ratio - 1) > TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
