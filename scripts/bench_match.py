"""Matching speed on this machine.

1. Search: top-5 identities for one query over N random 128-d templates (4 per identity),
   N = 10k, 100k, 1M; median of 5 runs after a warm-up.
2. Warm `Recognizer.identify` latency for one photo (detect + align + embed + search), if a model
   and a photo are given: python scripts/bench_match.py --model DIR --photo FILE
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from facerec.gallery import Gallery


def bench_search(n: int, dim: int = 128, per_identity: int = 4, repeats: int = 5) -> float:
    rng = np.random.default_rng(0)
    e = rng.normal(size=(n, dim)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    ids = np.array([f"person{i // per_identity}" for i in range(n)], object)
    g = Gallery("bench", dim, e, ids, np.array(["photo"] * n, object), np.array([""] * n, object), [b""] * n)
    q = e[:1] + 0.1 * rng.normal(size=(1, dim)).astype(np.float32)
    g.search(q, 5)  # builds the identity index once, as a loaded gallery does on first search
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        g.search(q, 5)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--photo")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    a = ap.parse_args()
    for n in map(int, a.sizes.split(",")):
        print(f"search top-5 over {n:>9,d} templates ({n // 4:,d} identities): {bench_search(n) * 1000:8.1f} ms")
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
            print(f"warm Recognizer.identify, one photo: median {np.median(times) * 1000:.0f} ms "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) over 10 runs")


if __name__ == "__main__":
    main()
