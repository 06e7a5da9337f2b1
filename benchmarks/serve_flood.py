"""Peak memory of `colorbot serve` and a one-image request's latency while it is flooded.

Starts `colorbot serve` (the default model unless --model) on 127.0.0.1 in its own process and,
for --seconds, sends it from --flooders client processes, over and over, the requests that used
to take it from 0.8 to 7 GB: six 7000x7000 PNGs in one request (about a megabyte: one flat
colour), 65 4000x4000 PNGs in one request (more instances than the queue holds), 64 of them
(within the instance limit, over the pixel budget); and --drippers clients send a body one byte
every 1.5 s. Meanwhile one client posts a 640x480 JPEG, one request at a time, and its latencies
are kept. The server's peak RSS is its VmHWM from /proc, read before it is stopped; then it gets
SIGTERM with the drippers still sending, and the time until it has answered everything is kept.
It fails (exit code 1) if the peak reaches --bound-mib or a one-image request takes 2 s or more;
it stops by itself.

    python benchmarks/serve_flood.py [--model MODEL_DIR] [--seconds 40] [--bound-mib 2048]

On 2 shared CPU cores, default model, 40 s: 932 MiB peak (876 MiB idle), one-image latency p50
1.15 s, max 1.73 s (0.40 s without the flood), every flood request 413, drained 3.0 s after SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import collections
import io
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import PIL.Image
import requests
import skimage.data

REPO = Path(__file__).resolve().parents[1]
LATENCY_LIMIT_S = 2.0


def flat_png(side: int) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (side, side), (120, 110, 100)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def body(*payloads: bytes) -> str:
    return json.dumps({"instances": [{"b64": base64.b64encode(payload).decode()} for payload in payloads]})


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0])
    return values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str | None, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "colorbot", "serve", "--port", str(port)] + (["--model", model] if model else [])
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"colorbot serve exited: {server.stderr.read()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("colorbot serve did not start within 300 s")


def drip(url: str, stop: threading.Event, statuses: collections.Counter) -> None:
    """A body announced and sent one byte every 1.5 s, again whenever the server hangs up."""
    address, path = url.removeprefix("http://").split("/", 1)
    host, port = address.split(":")
    while not stop.is_set():
        try:
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(f"POST /{path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode())
                connection.settimeout(1.5)
                while not stop.is_set():
                    try:
                        answer = connection.recv(4096)
                        statuses[f"drip {answer.split()[1].decode() if answer else 'closed'}"] += 1
                        break
                    except TimeoutError:
                        connection.sendall(b" ")
        except OSError:
            statuses["drip cut off"] += 1


def flood(url: str, floods: dict[str, bytes], number: int, until: float, results) -> None:
    """Post the flood requests in turn until ``until``; put the count of each answer on ``results``."""
    statuses: collections.Counter = collections.Counter()
    session = requests.Session()
    order = list(floods.items())
    turn = number
    while time.monotonic() < until:
        label, data = order[turn % len(order)]
        turn += 1
        try:
            statuses[f"{label}: {session.post(url, data=data, timeout=120).status_code}"] += 1
        except requests.RequestException as exc:
            statuses[f"{label}: {type(exc).__name__}"] += 1
            session = requests.Session()
    results.put(statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="exported model folder [default: the default model]")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--drippers", type=int, default=4)
    parser.add_argument("--bound-mib", type=float, default=2048.0, help="the peak RSS the server must stay under")
    args = parser.parse_args()

    print("building the flood requests ...", flush=True)
    huge, large = flat_png(7000), flat_png(4000)
    floods = {"6 x 7000x7000": body(*[huge] * 6).encode(), "65 x 4000x4000": body(*[large] * 65).encode(),
              "64 x 4000x4000": body(*[large] * 64).encode()}
    photo = PIL.Image.fromarray(skimage.data.astronaut()).resize((640, 480))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    probe = body(buffer.getvalue())
    for name, text in floods.items():
        print(f"  {name}: {len(text) / 1000:.0f} kB", flush=True)

    port = free_port()
    server = start_server(args.model, port)
    stopping = time.monotonic()  # moved on at SIGTERM
    try:
        url = _predict_url(port, server)
        requests.post(url, data=probe, timeout=120).raise_for_status()  # warm up
        quiet = []
        for _ in range(5):
            started = time.perf_counter()
            requests.post(url, data=probe, timeout=120).raise_for_status()
            quiet.append(time.perf_counter() - started)
        idle = memory_kib(server.pid)
        stop = threading.Event()
        statuses: collections.Counter = collections.Counter()
        latencies: list[float] = []

        def measure() -> None:
            session = requests.Session()
            while not flooding_done.is_set():
                started = time.perf_counter()
                try:
                    answer = session.post(url, data=probe, timeout=120)
                except requests.RequestException as exc:
                    statuses[f"one 640x480: {type(exc).__name__}"] += 1
                    return
                latencies.append(time.perf_counter() - started)
                statuses[f"one 640x480: {answer.status_code}"] += 1
                time.sleep(0.2)

        # Flooders in processes of their own, so that the one-image client's latency is the
        # server's, not this process's threads contending for the GIL.
        results = multiprocessing.get_context("fork").Queue()
        flooders = [multiprocessing.get_context("fork").Process(
            target=flood, args=(url, floods, number, time.monotonic() + args.seconds, results))
            for number in range(args.flooders)]
        flooding_done = threading.Event()
        threads = [threading.Thread(target=drip, args=(url, stop, statuses)) for _ in range(args.drippers)]
        threads.append(threading.Thread(target=measure))
        for worker in [*flooders, *threads]:
            worker.start()
        time.sleep(args.seconds)
        flooding_done.set()
        for _ in flooders:
            statuses.update(results.get(timeout=200))
        for worker in flooders:
            worker.join()
        peak = memory_kib(server.pid)
        # SIGTERM while the drippers are still sending: the drain must not wait for them.
        statuses.update({f"{label} (before SIGTERM)": count for label, count in statuses.items() if "drip" in label})
        stopping = time.monotonic()
        server.terminate()
        drained = STOPPED.wait(60)
        drain_s = time.monotonic() - stopping
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        exit_s = time.monotonic() - stopping

    peak_mib, idle_mib = peak["VmHWM"] / 1024, idle["VmRSS"] / 1024
    print(f"server idle after warm-up: {idle_mib:.0f} MiB; peak during {args.seconds:g} s of flood: {peak_mib:.0f} MiB "
          f"(bound {args.bound_mib:.0f} MiB)")
    print(f"SIGTERM with {args.drippers} clients still dripping: requests drained ('stopped') after "
          f"{drain_s:.1f} s{'' if drained else ' (not seen)'}, process gone after {exit_s:.1f} s")
    print(f"one-image 640x480 requests before the flood: latency p50 {statistics.median(quiet):.2f} s")
    print(f"one-image 640x480 requests during the flood: {len(latencies)}, latency p50 "
          f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s (limit {LATENCY_LIMIT_S:g} s)")
    for label, count in sorted(statuses.items()):
        print(f"  {label}: {count}")
    if peak_mib >= args.bound_mib or max(latencies) >= LATENCY_LIMIT_S:
        raise SystemExit(1)


def _predict_url(port: int, server: subprocess.Popen) -> str:
    """The predict URL of whatever model the server serves (its name is the model's own)."""
    line = server.stderr.readline()  # "serving NAME VERSION at http://…/v1/models/NAME"
    while line and "/v1/models/" not in line:
        line = server.stderr.readline()
    threading.Thread(target=_watch_for_stopped, args=(server,), daemon=True).start()  # and keep the pipe flowing
    return line.split()[-1] + ":predict"


STOPPED = threading.Event()


def _watch_for_stopped(server: subprocess.Popen) -> None:
    for line in server.stderr:
        if line.strip() == "stopped":  # `colorbot serve` says so once every accepted request is answered
            STOPPED.set()


if __name__ == "__main__":
    main()
