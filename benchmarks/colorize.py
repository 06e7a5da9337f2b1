"""Speed and peak memory of `colorbot colorize` at three photo sizes, against the bare backbone.

Each size runs in its own process (so its peak RSS is its own) through the code path of the
`colorize` command: read the file, colorize at full resolution with an exported model, encode
the PNG, write it. The model is exported once with random weights: the same arithmetic as
trained weights, and nothing to download.

Each size is given as a multiple of the bare encoder's forward pass at 224 (measured before and
after the sizes, on a shared machine), against the targets of issue 19. After its peak memory is
read, each child also times the path colorize took before (the SavedModel's TensorFlow
``colorize_rgb`` signature and Pillow's PNG encoder) on one photo, so old and new are compared
under the same load.

    python benchmarks/colorize.py [--backbone vgg16|resnet50|efficientnet_lite0] [--images 8]
    python benchmarks/colorize.py --model colorizer/default_model
    python benchmarks/colorize.py --model colorizer/default_model --steps   # each step alone, at 1024x768

Each child sets glibc's allocator as colorbot's processes do (colorbot/allocator.py); ``--glibc-defaults``
leaves it alone. Since issue 19's last round the network runs in ONNX Runtime (colorizer/export.py), the
full-size recombination is one Numba loop (colorizer/inference.py) and PNG is deflated by zlib-ng. The bare
encoder is also timed in ONNX Runtime, and each size given as a multiple of that too: the targets are
multiples of the TensorFlow encoder, and the network got faster by changing runtime, so against the encoder
in the runtime the network now uses the ratios are four times as large.

Measured 2026-12-02 on the idle 2-core machine, ``--model colorizer/default_model``, one run each, in one
session (the machine ran about 15% slower than in the morning: the TensorFlow encoder took 17-19 ms where it
had taken 14-15):

    size        before (bb5cdc5)   after (x TF encoder, x ONNX encoder)   after, --glibc-defaults
    224x224       37 ms   2.18x      22 ms   1.16x   4.6x                      22 ms   1.31x
    1024x768      66 ms   3.89x      40 ms   2.10x   8.4x  (target 2.5x)       39 ms   2.29x
    4000x3000    467 ms  27.47x     249 ms  13.19x  52.6x  (target 25x)       286 ms  16.65x
    peak RSS at 12 MP: 1,103 MiB before, 1,126 MiB after (target 1.8 GB)
    bare encoder: TensorFlow 17 ms in the run before, 19 ms in the run after; ONNX Runtime 4.7 ms

Measured 2026-12-03 after the gray input was broadcast in the network (no 16-channel copy), PNG deflated by
ISA-L level 2 in equal bands, and the guided fit's divisions made on full-shape counts; two runs of
``--model colorizer/default_model``, on a machine that ran slower than the day before (the TensorFlow encoder
took 27-32 ms, the ONNX one 7.3-8.8):

    size        after (x TF encoder)           path before in the same child
    224x224      27-34 ms   0.90-1.20x               84-90 ms
    1024x768     48-58 ms   1.70-1.97x (target 2.5x) 210-287 ms
    4000x3000   305-353 ms 10.4-12.5x  (target 25x)  2902-2978 ms
    peak RSS at 12 MP: 1,129 MiB (target 1.8 GB)

``--steps`` at 1024x768, two runs that afternoon (the machine still slow): JPEG decode 4.0-4.8 ms, luminance and
its network copy 3.4, the network 18.6-23.2, recombination 6.4-8.1, PNG 4.8-5.5. Before these changes, one-off
profiling that morning (not this script) gave the network 21 ms against 16 after the broadcast, PNG 11.3 against
4.3 (benchmarks/png.py holds the deflate comparison itself) and the guided fit 1.6 ms against 1.1.

Then (2026-12-03, a fresh machine whose TensorFlow encoder took 16-30 ms): the network's ONNX Runtime threads spin
between its operators and stop when a run returns (colorizer/export.py, ``network_session_options``). Parked
between operators they woke for each one, and a 1024x768 photo took 42-73 ms over seven runs (59, 42, 42, 61, 73,
42, 42: 1.95-2.95x, three of them over the 2.5x target); spinning, 34-45 ms over six runs (45, 42, 37, 34, 37,
39), four alternated with four of the seven. The last two runs, of this commit:

    size        after (x TF encoder)           path before in the same child
    224x224      22 ms      0.85-1.02x               50-59 ms
    1024x768     37-39 ms   1.50-1.73x (target 2.5x) 154-162 ms
    4000x3000   225-240 ms  8.6-11.1x  (target 25x)  2598-2926 ms
    peak RSS at 12 MP: 1,128-1,135 MiB (target 1.8 GB)

Earlier figures. Other runs of the same code that session: 1024x768 38-43 ms (2.26-2.46x), 4000x3000 262-288 ms (14.8-16.7x).
At 1024x768 the path is: JPEG decode 3.5 ms, luminance and its 224 copy 1.5, the network 11-14 (TensorFlow
22-26), recombination 5.6 (NumPy 18), PNG 9 (zlib 13).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [(224, 224), (1024, 768), (4000, 3000)]
TARGETS = {"1024x768": 2.5, "4000x3000": 25.0}
"""Issue 19's limits, as multiples of the bare encoder's time."""


def child(model_dir: str, width: int, height: int, count: int, glibc_defaults: bool) -> None:
    if not glibc_defaults:
        from colorbot.allocator import keep_freed_memory

        keep_freed_memory()  # as colorbot's own processes do
    import PIL.Image
    import skimage.data

    from colorizer.export import ExportedModel
    from colorizer.inference import encode_png, load_rgb

    photo = PIL.Image.fromarray(skimage.data.astronaut()).resize((width, height), PIL.Image.Resampling.BICUBIC)
    folder = Path(tempfile.mkdtemp())
    paths = []
    for i in range(count):
        path = folder / f"{i}.jpg"
        photo.rotate(i * 2).save(path, quality=90)
        paths.append(path)
    model = ExportedModel(model_dir)
    model.colorize([load_rgb(str(paths[0]))])  # trace and warm up
    started = time.perf_counter()
    for path in paths:
        result = model.colorize([load_rgb(str(path))])[0]
        (folder / f"{path.stem}.png").write_bytes(encode_png(result))
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before = graph_path_seconds(model, paths[0], folder)
    print(json.dumps({"size": f"{width}x{height}", "images": count, "seconds_per_image": seconds / count,
                      "images_per_s": count / seconds, "peak_rss_mib": peak_mib, "graph_path_seconds": before}))


def graph_path_seconds(model, path: Path, folder: Path) -> float:
    """One photo through the way colorize went before: TensorFlow ops at full size, then Pillow's PNG."""
    import io

    import PIL.Image
    import tensorflow as tf

    from colorizer.inference import load_rgb

    signature = model.saved.signatures["colorize_rgb"]
    signature(rgb=tf.constant(load_rgb(str(path))[:64, :64]))  # trace
    started = time.perf_counter()
    result = signature(rgb=tf.constant(load_rgb(str(path))))["rgb"].numpy()
    buffer = io.BytesIO()
    PIL.Image.fromarray(result).save(buffer, format="PNG", compress_level=1)
    (folder / "graph.png").write_bytes(buffer.getvalue())
    return time.perf_counter() - started


def step_milliseconds(model_dir: str, width: int, height: int, repeats: int = 30) -> dict[str, float]:
    """Each step of the colorize path timed alone on one photo, in milliseconds (mean of ``repeats``)."""
    import numpy as np
    import PIL.Image
    import skimage.data

    from colorizer.export import ExportedModel
    from colorizer.inference import encode_png, finish, full_luminance, load_rgb, shrink_luminance

    path = Path(tempfile.mkdtemp()) / "photo.jpg"
    PIL.Image.fromarray(skimage.data.astronaut()).resize((width, height), PIL.Image.Resampling.BICUBIC).save(
        path, quality=90)
    colorizer = ExportedModel(model_dir).colorizer
    rgb = load_rgb(str(path))
    y255 = full_luminance(rgb)
    y_small = shrink_luminance(y255, (colorizer.size, colorizer.size))
    uv = np.asarray(colorizer.predict_uv(y_small[None, ..., None]), np.float32)[0]
    colorized = finish(y255, y_small, uv, colorizer.upsampling)
    steps = {
        "JPEG decode": lambda: load_rgb(str(path)),
        "luminance and its network copy": lambda: shrink_luminance(full_luminance(rgb), (colorizer.size,) * 2),
        "network": lambda: colorizer.predict_uv(y_small[None, ..., None]),
        "recombination": lambda: finish(y255, y_small, uv, colorizer.upsampling),
        "PNG": lambda: encode_png(colorized),
    }
    timings = {}
    for name, step in steps.items():
        step()
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        timings[name] = (time.perf_counter() - started) / repeats * 1000
    return timings


def bare_backbone_seconds(config, repeats: int = 10, runtime: str = "tensorflow") -> float:
    """One forward pass of the encoder alone (the taps model inside the colorizer) at 224x224, in
    TensorFlow (the yardstick of issue 19's targets) or in ONNX Runtime (which colorize now uses)."""
    import dataclasses

    import numpy as np
    import tensorflow as tf

    from colorizer.model import build_model

    colorizer = build_model(dataclasses.replace(config, weights=None))
    model = colorizer.get_layer(f"{config.backbone}_taps")
    forward = tf.function(lambda x: model(x, training=False)[-1])  # the deepest tap needs every layer
    x = np.random.default_rng(0).random((1, 224, 224, 3), np.float32)
    if runtime == "onnxruntime":
        forward = onnx_session(forward, x.shape)
    np.asarray(forward(x))
    started = time.perf_counter()
    for _ in range(repeats):
        np.asarray(forward(x))
    return (time.perf_counter() - started) / repeats


def onnx_session(forward, shape):
    """``forward`` converted to ONNX and run as colorizer/export.py runs the exported network."""
    import logging

    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    tf2onnx.logging.set_level(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
    from colorizer.export import network_session_options

    session = onnxruntime.InferenceSession(proto.SerializeToString(), network_session_options(),
                                           providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="vgg16", choices=["vgg16", "resnet50", "efficientnet_lite0"],
                        help="random weights of this encoder (ignored with --model)")
    parser.add_argument("--model", default=None, help="an exported model folder, e.g. colorizer/default_model")
    parser.add_argument("--images", type=int, default=8, help="photos per size (4000x3000 uses half)")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave glibc's allocator as it is, not as colorbot's processes set it")
    parser.add_argument("--steps", action="store_true",
                        help="only time each step of the path alone at 1024x768 (needs --model)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps:
        if not args.model:
            parser.error("--steps needs --model")
        for name, milliseconds in step_milliseconds(args.model, 1024, 768).items():
            print(f"{name:>32}: {milliseconds:5.1f} ms")
        return
    if args.child:
        model_dir, width, height, count = args.child
        child(model_dir, int(width), int(height), int(count), args.glibc_defaults)
        return

    from colorizer.export import export_model
    from colorizer.model import ModelConfig, build_model

    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, devices: {[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"{os.cpu_count()} CPUs")
    if args.model:
        model_dir = args.model
        info = json.loads((Path(model_dir) / "colorbot-model.json").read_text())
        config = ModelConfig.from_dict(info["config"])
        print(f"model {info['name']} {info['version']} ({config.backbone})")
    else:
        model_dir = tempfile.mkdtemp()
        config = ModelConfig(backbone=args.backbone, weights=None)
        export_model(build_model(config), config, model_dir, name=f"benchmark-{args.backbone}", version="random")
    floor = bare_backbone_seconds(config)
    print(f"bare {config.backbone} forward pass at 224x224: {floor * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f}")
    rows = []
    for width, height in SIZES:
        count = max(2, args.images // 2) if width * height > 4e6 else args.images
        output = subprocess.run(
            [sys.executable, __file__, "--child", model_dir, str(width), str(height), str(count)]
            + (["--glibc-defaults"] if args.glibc_defaults else []),
            capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        ).stdout.strip().splitlines()[-1]
        rows.append(json.loads(output))
    floor_after = bare_backbone_seconds(config)
    print(f"bare forward pass again after the sizes: {floor_after * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f}")
    floor = (floor + floor_after) / 2
    onnx_floor = bare_backbone_seconds(config, runtime="onnxruntime")
    print(f"the same bare forward pass in ONNX Runtime, which colorize runs the network in: {onnx_floor * 1000:.1f} ms "
          f"({floor / onnx_floor:.1f}x faster than TensorFlow)")
    for row in rows:
        ratio = row["seconds_per_image"] / floor
        target = f" (target <= {TARGETS[row['size']]:g}x)" if row["size"] in TARGETS else ""
        print(f"{row['size']:>10}: {row['images_per_s']:6.2f} images/s, {row['seconds_per_image'] * 1000:7.0f} ms/image, "
              f"{ratio:5.2f}x the bare backbone{target} ({row['seconds_per_image'] / onnx_floor:.1f}x it in ONNX Runtime), "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB; "
              f"the path before: {row['graph_path_seconds'] * 1000:.0f} ms ({row['graph_path_seconds'] / floor:.1f}x), "
              f"{row['graph_path_seconds'] / row['seconds_per_image']:.1f}x slower")


if __name__ == "__main__":
    main()
