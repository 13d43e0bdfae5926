"""Matching speed and memory on this machine.

1. Search: top-5 identities for one query face over N random 128-d templates (4 per identity, as
   one photo + 3 synthetic-mask templates), N = 10k, 100k, 1M; median of 5 runs after a warm-up,
   and the search's peak working memory (numpy allocations, traced), which stays bounded by the
   chunking whatever N is.
2. Warm `Recognizer.identify` latency for one photo (detect + align + embed + search), if a model
   and a photo are given.

    python scripts/bench_match.py [--sizes 10000,100000,1000000] [--model DIR --photo FILE]
"""

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from facerec.gallery import Gallery


def random_gallery(n: int, dim: int = 128, per_identity: int = 4) -> Gallery:
    rng = np.random.default_rng(0)
    e = rng.normal(size=(n, dim)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    ids = np.array([f"person{i // per_identity}" for i in range(n)], object)
    return Gallery("bench", dim, e, ids, np.array(["photo"] * n, object), np.array([""] * n, object), [b""] * n)


def bench_search(g: Gallery, aggregate: str, repeats: int = 5) -> tuple[float, float]:
    """(median seconds, peak working memory in MB) of one top-5 search."""
    rng = np.random.default_rng(1)
    q = g.embeddings[:1] + 0.1 * rng.normal(size=(1, g.embedding_dim)).astype(np.float32)
    q /= np.linalg.norm(q)
    g.search(q, 5, aggregate)  # builds the identity index once, as a loaded gallery does on first search
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        g.search(q, 5, aggregate)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    g.search(q, 5, aggregate)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(np.median(times)), peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description="Matching speed and memory.")
    ap.add_argument("--model", help="model folder for the identify latency (default: none, skipped)")
    ap.add_argument("--photo", help="a photo with a face, for the identify latency")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    a = ap.parse_args()
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}")
    for n in map(int, a.sizes.split(",")):
        g = random_gallery(n)
        for agg in ("max", "top2"):
            sec, mb = bench_search(g, agg)
            print(f"search top-5 ({agg:4s}) over {n:>9,d} templates ({n // 4:,d} identities): "
                  f"{sec * 1000:8.1f} ms, peak working memory {mb:6.1f} MB (templates: {g.embeddings.nbytes / 2**20:.0f} MB)")
    if a.model and a.photo:
        from facerec import Recognizer

        with tempfile.TemporaryDirectory() as d:
            rec = Recognizer(model=a.model, gallery=Path(d) / "g.h5", mask_templates=0)
            rec.enroll("someone", [a.photo])
            rec.identify(a.photo)  # warm: model, detector and gallery loaded
            times = []
            for _ in range(10):
                t = time.perf_counter()
                rec.identify(a.photo)
                times.append(time.perf_counter() - t)
            print(f"warm Recognizer.identify, one photo ({a.model}): median {np.median(times) * 1000:.0f} ms "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) over 10 runs")


if __name__ == "__main__":
    main()
