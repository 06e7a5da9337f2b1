"""Scale: 1, 2 and 4 ``colorbot run`` workers on one PostgreSQL with one shared model server.

Run by hand:  .venv/bin/python benchmarks/scale.py [--posts 200] [--workers 1 2 4] [--kills 0] [--seed 1]

What it does:

1. builds a snapshot of ``--posts`` synthetic posts (small photos, every scene different) and serves it
   from the Reddit replay server on 127.0.0.1; exports a tiny model (as benchmarks/soak.py does) and
   serves it with one ``colorbot serve``, behind a counting proxy in this process, configured as the
   only network model (``url``), so each post is colorized by it and by the gray baseline;
2. starts a throwaway PostgreSQL cluster (tests/postgres_server.py) and, per worker count, a fresh
   database and fresh replay server, then that many ``colorbot run`` processes (the scheduler loop,
   short intervals) against them, each a process of its own;
3. stops the workers (SIGTERM) once every post is finished (evaluated or skipped), and counts:
   posts per second (from the first worker's start to the last post finished), image downloads per
   image at the replay server, inferences (``instances`` in predict requests) per post at the proxy,
   worker exit codes and tracebacks in their output, and from the database that every post is
   stored once, finished, with one colorization per model and one alignment.

With ``--kills N`` the harness SIGKILLs a seeded random live worker N times, at seeded points of the
progress, and starts it again. The killed worker's leases would run out after ``db.claims.LEASE_S``
(10 minutes); the harness ends them at the kill instead, standing for that wait (as the tests'
``expire_leases`` does). Work a killed worker had in hand is done again, so with kills the work per
post may exceed 1; every post must still end finished exactly once.

Prints a table and one JSON line; exit code 1 if any check failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.soak import IMAGE_PREFIXES, REMOTE_MODEL, ModelServer, textured_scene  # noqa: E402
from benchmarks.scrape import compose, encode  # noqa: E402
from bot.replay import ReplayServer, Snapshot, build_snapshot  # noqa: E402
from tests.factories import gray_copy  # noqa: E402
from tests.postgres_server import PostgresCluster  # noqa: E402

FINISHED = ("evaluated", "skipped", "replied")
WIDTH, HEIGHT = 128, 96
WARM_S = 3.0  # a worker this long started has imported and is working, so a kill lands mid-work


class CountingProxy:
    """Forwards every request to the model server and counts the images asked to be colorized."""

    def __init__(self, target: str):
        self.target = target
        self.instances = 0
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _forward(self, body: bytes | None) -> None:
                request = urllib.request.Request(proxy.target + self.path, data=body, method=self.command,
                                                 headers={"Content-Type": self.headers.get("Content-Type", "")})
                try:
                    with urllib.request.urlopen(request, timeout=120) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.endswith(":predict"):
                    asked = len(json.loads(body).get("instances", []))
                    with proxy._lock:
                        proxy.requests += 1
                        proxy.instances += asked
                self._forward(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.instances = self.requests = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_snapshot(posts: int, seed: int) -> Snapshot:
    scenes = (textured_scene(seed * 100_000 + n, WIDTH, HEIGHT) for n in range(posts))
    return build_snapshot(((encode(gray_copy(rgb)), encode(rgb)) for rgb in scenes), compose=compose)


def write_config(folder: Path, database_url: str, server: ReplayServer, model_url: str, posts: int) -> Path:
    reddit = server.reddit_settings(limit=posts, scrape_interval_min=0.05)
    download = server.download_settings()
    lines = [
        "[database]", f'url = "{database_url}"',
        "[logging]", 'level = "WARNING"',
        "[reddit]", *(f"{key} = {json.dumps(value)}" for key, value in reddit.items()),
        "[download]", *(f"{key} = {json.dumps(value)}" for key, value in download.items()),
        # Short intervals: a worker that found nothing (the scrape had not stored posts yet) looks again soon.
        "[pipeline]", "colorize_interval_min = 0.02", "evaluate_interval_min = 0.02",
        f'report_dir = "{folder / "report"}"',
        "[[colorizer.models]]", f'name = "{REMOTE_MODEL}"', f'url = "{model_url}"',
    ]
    config = folder / "colorbot.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@dataclass
class Worker:
    """One worker slot: a ``colorbot run`` process, started again after each kill."""

    number: int
    config: Path
    logs: Path
    process: subprocess.Popen | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    killed_pids: set[int] = field(default_factory=set)
    stopped_starting: int = 0  # SIGTERMed by the harness before it had set its handler (still importing)
    started_at: float = 0.0
    _sink: Any = None

    def start(self) -> None:
        self.starts += 1
        self.started_at = time.monotonic()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        env.pop("COLORBOT_CONFIG", None)
        self._sink = open(self.logs / f"worker-{self.number}-{self.starts:02d}.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "colorbot", "--config", str(self.config), "run"],
                                        cwd=self.config.parent, env=env, stdout=self._sink, stderr=subprocess.STDOUT)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    def reap(self, stopping: bool = False) -> None:
        """Record a process that ended; a SIGKILL of ours is a kill, not an exit code."""
        code = self.process.wait()
        self._sink.close()
        if self.process.pid in self.killed_pids:
            return
        if stopping and code == -signal.SIGTERM and not Path(self._sink.name).read_text().strip():
            self.stopped_starting += 1
        else:
            self.exit_codes.append(code)

    def kill(self) -> None:
        self.killed_pids.add(self.process.pid)
        self.process.kill()
        self.reap()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.reap(stopping=True)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def progress(engine) -> tuple[int, int]:
    """(posts stored, posts finished)."""
    from sqlalchemy import text

    with engine.connect() as connection:
        stored, finished = connection.execute(text(
            "select count(*), count(*) filter (where state = any(:finished)) from posts"),
            {"finished": list(FINISHED)}).one()
    return stored, finished


def end_leases_of(engine, pid: int) -> int:
    """Lease ends for a killed worker's claims: the wait of ``LEASE_S`` the benchmark does not sit out."""
    from sqlalchemy import text

    with engine.begin() as connection:
        return connection.execute(text(
            "update posts set claimed_until = now() - interval '1 second' where claimed_by like :worker"),
            {"worker": f"%:{pid}:%"}).rowcount


def database_checks(engine, posts: int) -> dict[str, Any]:
    from sqlalchemy import text

    def scalar(sql: str) -> Any:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()

    with engine.connect() as connection:
        states = dict(connection.execute(text("select state, count(*) from posts group by state")).all())
        skip_reasons = dict(connection.execute(text(
            "select skip_reason, count(*) from posts where state = 'skipped' group by skip_reason")).all())
    return {
        "states": states, "skip_reasons": skip_reasons,
        "posts stored once": scalar("select count(distinct reddit_id) = count(*) from posts")
        and sum(states.values()) == posts,
        "every post finished": sum(states.get(state, 0) for state in FINISHED) == posts,
        "one colorization per (post, model)": scalar(
            "select count(*) = 0 from (select 1 from colorizations group by post_id, model_id having count(*) > 1) d"),
        "every evaluated post colorized by each model": scalar(
            "select count(*) = 0 from posts p where p.state = 'evaluated' and "
            "(select count(*) from colorizations c where c.post_id = p.id) <> (select count(*) from models)"),
        "one alignment per evaluated post": scalar(
            "select (select count(*) from alignments) = (select count(*) from posts where state = 'evaluated')"),
        "no lease left": scalar("select count(*) = 0 from posts where claimed_by is not null"),
    }


def run_round(cluster: PostgresCluster, snapshot: Snapshot, proxy: CountingProxy, model_pid: int, workers: int,
              kills: int, seed: int, folder: Path, timeout_s: float) -> dict[str, Any]:
    from db import make_engine

    folder.mkdir(parents=True)
    logs = folder / "logs"
    logs.mkdir()
    database_url = cluster.create_database()
    engine = make_engine(database_url)
    posts = len(snapshot.posts)
    rng = random.Random(seed * 7919 + workers)
    kill_points = sorted(rng.sample(range(1, posts - 1), kills))
    kills_done = []
    proxy.reset()
    cpu_before = {"model server": cpu_s(model_pid), "workers": children_cpu_s(), "harness": self_cpu_s()}
    with ReplayServer(snapshot) as server:
        config = write_config(folder, database_url, server, proxy.url, posts)
        slots = [Worker(number, config, logs) for number in range(workers)]
        started = time.monotonic()
        for slot in slots:
            slot.start()
        finished_at = None
        while time.monotonic() - started < timeout_s:
            time.sleep(0.25)
            for slot in slots:  # one that exited on its own is an error (recorded) and is started again
                if slot.process.poll() is not None:
                    slot.reap()
                    slot.start()
            try:
                stored, finished = progress(engine)
            except Exception:  # noqa: BLE001 - the first worker may still be creating the tables
                continue
            # A kill lands on a worker that is working (past its imports), at the first poll it can.
            working = [slot for slot in slots if slot.uptime_s > WARM_S]
            if kill_points and finished >= kill_points[0] and working:
                kill_points.pop(0)
                victim = rng.choice(working)
                pid = victim.process.pid
                victim.kill()
                kills_done.append({"worker": victim.number, "at_finished": finished,
                                   "leases_ended": end_leases_of(engine, pid)})
                victim.start()
            if stored == posts and finished == posts:
                finished_at = time.monotonic()
                break
        for slot in slots:
            slot.stop()
        seconds = (finished_at or time.monotonic()) - started
        downloads = collections.Counter(path for _method, path in server.requests if path.startswith(IMAGE_PREFIXES))
    # Where the CPU went (PostgreSQL's own processes are not counted): on a small machine, the model server.
    cpu = {"model server": cpu_s(model_pid), "workers": children_cpu_s(), "harness": self_cpu_s()}
    cpu = {name: round(cpu[name] - cpu_before[name], 1) for name in cpu}
    images = len(snapshot.images)
    checks = database_checks(engine, posts)
    engine.dispose()
    cluster.drop_database(database_url)
    tracebacks = sum(path.read_text(errors="replace").count("Traceback") for path in logs.glob("*.log"))
    exit_codes = [code for slot in slots for code in slot.exit_codes]
    states, skip_reasons = checks.pop("states"), checks.pop("skip_reasons")
    downloads_per_image = sum(downloads.values()) / images
    evaluated = states.get("evaluated", 0)
    checks |= {
        "finished within the time-out": finished_at is not None,
        f"{kills} kills landed": len(kills_done) == kills,
        "no worker exited non-zero": all(code == 0 for code in exit_codes),
        "no traceback in the workers' output": tracebacks == 0,
    }
    if kills == 0:  # a killed worker's work in hand is done again; without kills there is no excuse
        checks["each image downloaded once"] = set(downloads.values()) == {1} and len(downloads) == images
        checks["each post inferred once"] = proxy.instances == evaluated
    return {
        "workers": workers, "posts": posts, "seconds": round(seconds, 2),
        "posts_per_s": round(posts / seconds, 2) if finished_at else None,
        "downloads_per_image": round(downloads_per_image, 3),
        "inferences_per_post": round(proxy.instances / max(1, evaluated), 3),
        "predict_requests": proxy.requests, "cpu_s": cpu, "states": states, "skip_reasons": skip_reasons,
        "exit_codes": exit_codes,
        "stopped_while_starting": sum(slot.stopped_starting for slot in slots), "tracebacks": tracebacks, "kills": kills_done,
        "checks": checks, "ok": all(checks.values()),
    }


def export_model(folder: Path) -> Path:
    # In a child process, as benchmarks/soak.py does: TensorFlow stays out of the harness.
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from benchmarks.soak import "
                    "export_tiny_model; export_tiny_model(Path(sys.argv[1]))", str(folder)],
                   cwd=REPO, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True)
    return folder


def run_scale(posts: int, worker_counts: list[int], kills: int, seed: int, work: Path,
              timeout_s: float) -> list[dict[str, Any]]:
    snapshot = make_snapshot(posts, seed)
    model_server = ModelServer(export_model(work / "tiny"), work / "model-logs")
    model_server.start()
    proxy = CountingProxy(model_server.url)
    cluster = PostgresCluster().start()
    try:
        return [run_round(cluster, snapshot, proxy, model_server.process.pid, count, kills, seed, work / f"workers-{count}", timeout_s)
                for count in worker_counts]
    finally:
        cluster.stop()
        proxy.close()
        model_server.stop()


def print_table(rounds: list[dict[str, Any]]) -> None:
    print(f"{'workers':>7} {'posts':>5} {'seconds':>8} {'posts/s':>8} {'downloads/image':>15} "
          f"{'inferences/post':>15} {'exits!=0':>8} {'tracebacks':>10} {'kills':>5} {'CPU s model/workers/harness':>27}"
          "  checks")
    for row in rounds:
        failed = [name for name, ok in row["checks"].items() if not ok]
        print(f"{row['workers']:>7} {row['posts']:>5} {row['seconds']:>8.1f} {row['posts_per_s'] or 0:>8.2f} "
              f"{row['downloads_per_image']:>15.3f} {row['inferences_per_post']:>15.3f} "
              f"{sum(code != 0 for code in row['exit_codes']):>8} {row['tracebacks']:>10} {len(row['kills']):>5} "
              f"{'/'.join(str(value) for value in row['cpu_s'].values()):>27}  "
              f"{'all passed' if not failed else 'FAILED: ' + '; '.join(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker count")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    if args.keep is not None:
        rounds = run_scale(args.posts, args.workers, args.kills, args.seed, args.keep, args.timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="colorbot-scale-") as folder:
            rounds = run_scale(args.posts, args.workers, args.kills, args.seed, Path(folder), args.timeout)
    print_table(rounds)
    print(json.dumps({"scale": rounds}, sort_keys=True))
    sys.exit(0 if all(row["ok"] for row in rounds) else 1)


if __name__ == "__main__":
    main()
