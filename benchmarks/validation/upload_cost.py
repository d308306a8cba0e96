"""What one upload and one thumbnail GET cost a server's CPU, the real ImageCanvas beside ours.

``python -m benchmarks.validation.upload_cost [--images 60] [--servers app:today,legacy-ratelimit]``
starts each server fresh, sends it the workload's first images one at a time (the form the target
describes, with the hash the page sends), then GETs each stored file's thumbnails, and reads the
server process's CPU time (every thread: sharp's pool, our thumbnail threads) around each phase.
``--streams 1``: one request at a time, the work per request with no queueing in it; ``--streams 5``:
five at a time, what the server does with both cores (uploads/s at saturation). The first
``--warm`` uploads warm the server up (V8's JIT, imports) and are not counted.

A server is ``app:today`` / ``app:as-reported`` (the real app, set up by ``make tools``) or the name of
one of our profiles, run by ``bulkbench serve``. Each is measured ``--rounds`` times, alternating, and
the note gives every round: a shared machine's bursts show as spread between rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bulkbench.protocol import thumbnail_url
from bulkbench.strategies.common import THUMBNAIL_SIZES
from bulkbench.target import Target, load_target
from bulkbench.workload import draw_images, load_workload
from loadtests.imagecache import ImageCache
from loadtests.imagecanvas import ImageCanvasApp
from reference_server.process import ServerProcess, cpu_times

REQUEST_TIMEOUT_S = 60.0
MAX_IMAGES = 400
"""Below the per-IP limiter's 500 requests a minute with the GETs counted: the cost of a 429 is not the question."""


def used(before: tuple[float, float], pid: int) -> tuple[float, float]:
    user, system = cpu_times(pid)
    return user - before[0], system - before[1]


@contextlib.contextmanager
def started(server: str) -> Iterator[tuple[str, int, Target]]:
    """The server's URL, its process id and the target that describes its upload form."""
    if server.startswith("app:"):
        with ImageCanvasApp(server.split(":", 1)[1]) as app:
            assert app.process is not None
            yield app.url, app.process.pid, load_target("imagecanvas")
        return
    with tempfile.TemporaryDirectory() as data, ServerProcess(server, data) as ours:
        yield ours.url, ours.pid, load_target("reference")


def upload(session: requests.Session, url: str, target: Target, name: str, data: bytes, digest: str) -> dict[str, Any]:
    spec = target.upload
    form = {**spec.fields, **({spec.hash_field: digest} if spec.hash_field else {})}
    response = session.post(url + spec.route, files={spec.file_field: (name, data, "image/png")}, data=form,
                            timeout=REQUEST_TIMEOUT_S)
    if response.status_code != 200:
        raise RuntimeError(f"upload of {name} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def upload_all(url: str, target: Target, files: list[tuple[str, bytes, str]], streams: int) -> list[dict[str, Any]]:
    """Every file uploaded, ``streams`` at a time (a session each, as browsers' connections are)."""
    answers: list[dict[str, Any]] = [{}] * len(files)

    def stream(first: int) -> None:
        with requests.Session() as session:
            for index in range(first, len(files), streams):
                name, data, digest = files[index]
                answers[index] = upload(session, url, target, name, data, digest)

    with ThreadPoolExecutor(streams) as pool:
        for done in [pool.submit(stream, first) for first in range(streams)]:
            done.result()
    return answers


def measure(server: str, images: int, warm: int, streams: int, gets: bool = True) -> dict[str, Any]:
    cache, workload = ImageCache(), load_workload()
    specs = draw_images(workload, user=0, count=images + warm)
    files = [(spec.filename, data, hashlib.sha256(data).hexdigest())
             for spec in specs for data in (cache.bytes(spec),)]
    with started(server) as (url, pid, target), requests.Session() as session:
        upload_all(url, target, files[:warm], 1)
        cpu, wall = cpu_times(pid), time.perf_counter()
        answers = upload_all(url, target, files[warm:], streams)
        (upload_user, upload_system), upload_wall = used(cpu, pid), time.perf_counter() - wall
        upload_cpu = upload_user + upload_system
        stems = [answer[target.upload.server_filename_field].rsplit(".", 1)[0] for answer in answers]
        paths = [thumbnail_url(size, stem) for stem in stems for size in THUMBNAIL_SIZES[:1]] if gets else []
        cpu, wall = cpu_times(pid), time.perf_counter()
        statuses: dict[int, int] = {}
        for path in paths:
            status = session.get(url + path, timeout=REQUEST_TIMEOUT_S).status_code
            statuses[status] = statuses.get(status, 0) + 1
        get_cpu, get_wall = sum(used(cpu, pid)), time.perf_counter() - wall
    if gets and set(statuses) != {200}:
        raise RuntimeError(f"{server}: thumbnail GETs answered {statuses}, not all 200")
    megabytes = sum(len(data) for _name, data, _digest in files[warm:]) / 1e6
    return {"server": server, "streams": streams, "uploads": images, "megabytes": round(megabytes, 1),
            "uploads_per_s": round(images / upload_wall, 2),
            "upload_cpu_ms": round(upload_cpu / images * 1000, 1),
            "upload_system_share": round(upload_system / upload_cpu, 3) if upload_cpu else 0.0,
            "upload_wall_ms": round(upload_wall / images * 1000, 1),
            "gets": len(paths), "get_cpu_ms": round(get_cpu / len(paths) * 1000, 2) if paths else None,
            "get_wall_ms": round(get_wall / len(paths) * 1000, 2) if paths else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--streams", default="1", help="uploads at a time, one measurement each: 1,5")
    parser.add_argument("--servers", default="app:today,legacy-ratelimit")
    parser.add_argument("--no-gets", action="store_true", help="upload only (a profile that makes no thumbnails)")
    parser.add_argument("--out", type=Path, help="also write the rows here (JSON)")
    args = parser.parse_args()
    if not 1 <= args.images + args.warm <= MAX_IMAGES:
        parser.error(f"--images + --warm must be 1..{MAX_IMAGES} (MAX_IMAGES)")
    rows = []
    for round_ in range(args.rounds):
        for streams in (int(value) for value in args.streams.split(",")):
            for server in args.servers.split(","):
                measured = measure(server.strip(), args.images, args.warm, streams, not args.no_gets)
                row = {"round": round_ + 1, **measured}
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
