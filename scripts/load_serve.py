"""Requests/s and latency of facerec-serve's /identify under concurrent clients (a measurement, not a test).

    .venv/bin/python scripts/load_serve.py [--clients 8] [--requests 200] [--people 20] [--model M] [--json]

Starts facerec-serve on a free local port over a fresh gallery of the first photo of `--people` LFW
people, then `--clients` threads each post photos (the second photo of those people, in turn) to
/identify until `--requests` are done. The machine is shared: compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from facerec.training.data import data_root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--model", default=None, help="Model path (default: the shipped model).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = data_root()
    if root is None:
        sys.exit("load_serve: face data not found (set FACEREC_DATA or place it at ../shared/data)")
    lfw = root / "lfw" / "lfw-deepfunneled"
    people = [p for p in sorted(lfw.iterdir()) if len(list(p.glob("*.jpg"))) >= 2][:args.people]
    enrol = [sorted(p.glob("*.jpg"))[0] for p in people]
    probes = [sorted(p.glob("*.jpg"))[1].read_bytes() for p in people]

    tmp = Path(tempfile.mkdtemp(prefix="load_serve-"))
    port = _free_port()
    cmd = [sys.executable, "-m", "facerec.cli.serve", "--gallery", str(tmp / "g.h5"), "--port", str(port)]
    if args.model:
        cmd += ["--model", args.model]
    server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                health = httpx.get(base + "/health", timeout=5).json()
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    sys.exit("load_serve: the server did not start")
                time.sleep(0.2)
        ready = time.monotonic() - started
        with httpx.Client(base_url=base, timeout=120) as c:
            for person, photo in zip(people, enrol):
                r = c.post("/enroll", data={"name": person.name},
                           files=[("image", (photo.name, photo.read_bytes(), "image/jpeg"))])
                r.raise_for_status()

        def one(i: int) -> tuple[float, bool]:
            with httpx.Client(base_url=base, timeout=120) as c:  # a client per request: no shared pool
                t = time.perf_counter()
                r = c.post("/identify", files=[("image", (f"{i}.jpg", probes[i % len(probes)], "image/jpeg"))])
                return time.perf_counter() - t, r.status_code == 200

        one(0)  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat = np.array([r[0] for r in results]) * 1000
    out = {"clients": args.clients, "requests": args.requests, "ok": sum(r[1] for r in results),
           "requests_per_s": args.requests / wall, "p50_ms": float(np.percentile(lat, 50)),
           "p95_ms": float(np.percentile(lat, 95)), "runtime": health["runtime"], "server_ready_s": ready}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['requests']} /identify requests ({out['ok']} ok) from {args.clients} clients, {health['runtime']}: "
          f"{out['requests_per_s']:.1f} requests/s, latency p50 {out['p50_ms']:.0f} ms, p95 {out['p95_ms']:.0f} ms "
          f"(server ready in {ready:.1f} s)")


if __name__ == "__main__":
    main()
