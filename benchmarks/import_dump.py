"""`colorbot import` benchmark: peak memory and objects/s on generated dump files of 20 and 200 MB.

Run by hand:  .venv/bin/python benchmarks/import_dump.py [--sizes 20,200] [--share 0.002] [--window-log 27]

Writes zstd NDJSON submission dumps of about each size (compressed), mostly posts of thousands of
other subreddits with ``--share`` of r/colorization image posts mixed in (the tests' generator,
``tests/factories/reddit.py``: varied ids, authors, titles, text and links, so they compress about as a
real month does), then runs ``colorbot import`` on each in its own process into a fresh SQLite
file, and prints lines, posts stored, seconds, objects/s and the process's peak RSS (``wait4``),
then imports the smallest file again to show the rerun stores nothing.

A zstd decoder keeps the window the file declares (``--window-log``), so resident memory rises
until that much has been decompressed and then stays flat: with the default 2**27 (128 MiB, zstd's
own ``--long``) both sizes are past it and the figures compare the importer itself. Files written
with ``--long=31``, as Pushshift's are, make every import of more than 2 GiB of JSON hold 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.factories import filler_objects  # noqa: E402 - the tests' dump generator


def write_sized_dump(path: Path, megabytes: float, share: float, window_log: int, level: int, seed: int) -> dict:
    """Objects until the compressed file reaches ``megabytes``; what was written."""
    target = int(megabytes * 1_000_000)
    params = zstandard.ZstdCompressionParameters.from_level(
        level, window_log=window_log, enable_ldm=window_log > 27, write_checksum=1)
    lines = ours = raw = 0
    started = time.monotonic()
    with open(path, "wb") as out:
        with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as writer:
            for data in filler_objects(10**9, seed=seed, share=share):
                line = json.dumps(data, separators=(",", ":")).encode() + b"\n"
                writer.write(line)
                lines += 1
                raw += len(line)
                ours += data["subreddit"] == "colorization"
                if lines % 2_000 == 0 and out.tell() >= target:
                    break
    return {"file": str(path), "compressed_mb": path.stat().st_size / 1e6, "json_mb": raw / 1e6,
            "lines": lines, "colorization_posts": ours, "window_log": window_log,
            "write_s": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200", help="compressed sizes in MB, comma-separated")
    parser.add_argument("--share", type=float, default=0.002, help="share of r/colorization posts")
    parser.add_argument("--window-log", type=int, default=27, help="zstd window of the generated files (2**N)")
    parser.add_argument("--level", type=int, default=3, help="zstd level of the generated files")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go [a temporary folder]")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="colorbot-dumps-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for number, size in enumerate(float(s) for s in args.sizes.split(",")):
        dump = folder / f"RS_bench_{size:g}MB_w{args.window_log}.zst"
        written = write_sized_dump(dump, size, args.share, args.window_log, args.level, seed=number)
        print(f"wrote {json.dumps(written)}", flush=True)
        db = folder / f"bench-{size:g}.db"
        db.unlink(missing_ok=True)
        measured = measure(dump, db)
        results.append({**written, **measured})
        print(json.dumps(results[-1]), flush=True)
        if number == 0:
            print(f"rerun: {json.dumps(measure(dump, db))}", flush=True)
        dump.unlink()
    print()
    print(f"{'compressed MB':>13} {'JSON MB':>8} {'objects':>9} {'ours':>6} {'process s':>9} "
          f"{'import s':>8} {'objects/s':>10} {'peak RSS MiB':>12}")
    for r in results:
        print(f"{r['compressed_mb']:13.1f} {r['json_mb']:8.0f} {r['lines']:9d} {r['colorization_posts']:6d} "
              f"{r['seconds']:9.1f} {r['import_s']:8.1f} {r['lines'] / r['import_s']:10,.0f} {r['peak_rss_mib']:12.0f}")
    if len(results) > 1:
        print(f"peak RSS ratio largest/smallest: {results[-1]['peak_rss_mib'] / results[0]['peak_rss_mib']:.3f}")


def measure(dump: Path, db: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORBOT_")}
    env["COLORBOT_DATABASE__URL"] = f"sqlite:///{db}"
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    with open(os.devnull, "wb") as sink, tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, "-m", "colorbot", "import", str(dump), "--no-progress"],
                                   env=env, stdout=out, stderr=sink)
        _pid, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        summary = out.read().decode().strip()
    if process.returncode != 0:
        raise SystemExit(f"import of {dump} failed ({process.returncode}): {summary}")
    # the importer's own time, from reading the first byte to the last commit (no interpreter start-up)
    import_s = float(re.search(r"; ([0-9.]+) s, [0-9,]+ objects/s", summary).group(1))
    return {"seconds": round(seconds, 1), "import_s": import_s, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "summary": summary}


if __name__ == "__main__":
    main()
