"""Throughput and latency of `colorbot serve` at concurrency 1, 8 and 32, with and without batching.

An exported model (random weights: the same arithmetic as trained ones) is served on 127.0.0.1;
clients post 640x480 JPEGs through TensorFlow Serving's REST API. Each concurrency level runs
twice: with dynamic batching (up to 16 images per network call, 5 ms window) and with batches
of one, and the speed-up of batching is the ratio of their throughputs.

    python benchmarks/serve.py [--backbone vgg16|efficientnet_lite0|tiny | --model MODEL_DIR] [--requests-per-client 4]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import PIL.Image
import requests
import skimage.data

from colorizer.client import LocalColorizer
from colorizer.export import export_model
from colorizer.model import ModelConfig, build_model
from colorizer.serve import ModelServer, ServeSettings


def run_level(model: LocalColorizer, body: str, concurrency: int, per_client: int, max_batch: int) -> dict:
    settings = ServeSettings(port=0, max_batch=max_batch, batch_timeout_ms=5.0, max_queue=1024)
    with ModelServer("bench", "1", model.colorize, settings) as server:
        url = f"{server.url}/v1/models/bench:predict"
        session = requests.Session()
        session.post(url, data=body, timeout=600).raise_for_status()  # warm up

        def client(_):
            own = requests.Session()
            latencies = []
            for _ in range(per_client):
                started = time.perf_counter()
                own.post(url, data=body, timeout=600).raise_for_status()
                latencies.append(time.perf_counter() - started)
            return latencies

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = [latency for result in pool.map(client, range(concurrency)) for latency in result]
        seconds = time.perf_counter() - started
        batches = list(server.batcher.batches[1:])
    return {
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
        "mean_batch": float(np.mean(batches)) if batches else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="vgg16", choices=["vgg16", "resnet50", "efficientnet_lite0", "tiny"],
                        help="random weights of this encoder (ignored with --model)")
    parser.add_argument("--model", default=None, help="an exported model folder, e.g. colorizer/default_model")
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--levels", default="1,8,32")
    args = parser.parse_args()

    import tensorflow as tf

    if args.model:
        model = LocalColorizer(args.model)
    else:
        config = ModelConfig(backbone=args.backbone, weights=None, input_size=64 if args.backbone == "tiny" else 224)
        folder = tempfile.mkdtemp()
        export_model(build_model(config), config, folder, name="bench", version="1")
        model = LocalColorizer(folder)
    photo = PIL.Image.fromarray(skimage.data.astronaut()).resize((640, 480))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    body = json.dumps({"instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]})
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(f"{model.identity.name} ({model.identity.backbone or args.backbone}), 640x480 JPEG per request, TensorFlow {tf.__version__} on {devices}, {os.cpu_count()} CPUs")
    for concurrency in (int(level) for level in args.levels.split(",")):
        per_client = max(1, args.requests_per_client if concurrency < 32 else args.requests_per_client // 2)
        batched = run_level(model, body, concurrency, per_client, max_batch=16)
        single = run_level(model, body, concurrency, per_client, max_batch=1)
        print(f"concurrency {concurrency:>2}: batched {batched['requests_per_s']:6.2f} req/s "
              f"(p50 {batched['p50_ms']:7.0f} ms, p99 {batched['p99_ms']:7.0f} ms, mean batch {batched['mean_batch']:.1f}); "
              f"batch size 1 {single['requests_per_s']:6.2f} req/s (p50 {single['p50_ms']:7.0f} ms, "
              f"p99 {single['p99_ms']:7.0f} ms); speed-up {batched['requests_per_s'] / single['requests_per_s']:.2f}x")


if __name__ == "__main__":
    main()
