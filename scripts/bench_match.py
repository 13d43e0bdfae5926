"""Matching speed, memory and accuracy on this machine: today's float32 scan vs float16 exact vs ANN.

1. Search over N synthetic 128-d templates, N = 100 k and 1 M (`--templates N` for one size):
   - float32: the search as it was before the float16 scan (chunked NumPy matrix products over
     float32 templates, per-identity aggregation, running top-k), kept here as the reference;
   - exact: `Gallery.search` (float16 templates scanned by faiss's SIMD scanner, then exact
     per-identity scores);
   - ann: `Gallery.search(index="ann")` (facerec.search.index: IVF, float16 codes), with its build time.
   For each: one face's top-5 latency (median over 30 queries, the three paths interleaved so that
   the load of this shared machine hits them alike), batch throughput (faces/s, 128 faces per call),
   template memory; top-1 agreement of exact with float32 and recall@1 of ann against exact.
   Data: clustered, since random Gaussian templates have no neighbourhood structure for an ANN index
   to find: 4 templates per person, noisy copies of the person's random unit centre (cosine ~0.68
   between a person's templates, as a real person's photos); queries are new noisy copies of enrolled
   people (cosine ~0.64 to their templates). 10 M is not run by default: the float32 reference alone
   is 4.8 GiB, with the float16 templates and the index about 10 GB, more than this shared machine
   has to spare; `--templates 10000000` runs it where memory allows.
2. Warm `Recognizer.identify` latency for one photo (detect + align + embed + search), if a model
   and a photo are given.

    python scripts/bench_match.py [--templates N] [--json] [--model DIR --photo FILE]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from facerec.search.gallery import Gallery, _aggregate
from facerec.search.index import AnnIndex

PER_PERSON = 4
_CHUNK, _QUERIES = 32768, 128  # the float32 reference: templates and query faces scored at once


def clustered_gallery(n: int, dim: int = 128, seed: int = 0) -> tuple[Gallery, np.ndarray, np.ndarray]:
    """(gallery, float32 templates, 1000 queries): n templates of n / PER_PERSON people."""
    rng = np.random.default_rng(seed)
    people = -(-n // PER_PERSON)
    centres = _unit(rng.normal(size=(people, dim)).astype(np.float32))
    e = np.empty((n, dim), np.float32)
    for lo in range(0, n, 1 << 20):  # in slices: bounded temporary memory
        hi = min(n, lo + (1 << 20))
        noise = 0.06 * rng.normal(size=(hi - lo, dim)).astype(np.float32)
        e[lo:hi] = _unit(centres[np.arange(lo, hi) // PER_PERSON] + noise)
    queries = _unit(centres[rng.integers(0, people, 1000)] + 0.08 * rng.normal(size=(1000, dim)).astype(np.float32))
    ids = np.array([f"person{i // PER_PERSON}" for i in range(n)], object)
    g = Gallery("bench", dim, e, ids, np.array(["photo"] * n, object), np.array([""] * n, object), [b""] * n)
    return g, e, queries


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def float32_search(emb: np.ndarray, names: np.ndarray, starts: np.ndarray, queries: np.ndarray, k: int = 5,
                   aggregate: str = "max") -> list[list[tuple[str, float]]]:
    """The reference: the float32 search facerec had before (chunks of whole identities, running top-k)."""
    q = np.asarray(queries, np.float32).reshape(-1, emb.shape[1])
    ends = np.r_[starts[1:], len(emb)]
    k = min(k, len(names))
    bounds, g = [], 0
    while g < len(names):
        g_end = max(g + 1, int(np.searchsorted(ends, starts[g] + _CHUNK, "right")))
        bounds.append((g, g_end))
        g = g_end
    results = []
    for b in range(0, len(q), _QUERIES):
        qb = q[b:b + _QUERIES]
        top_s = np.empty((len(qb), 0), np.float32)
        top_i = np.empty((len(qb), 0), np.int64)
        for g, g_end in bounds:
            lo, hi = starts[g], ends[g_end - 1]
            scores = _aggregate(qb @ emb[lo:hi].T, starts[g:g_end] - lo, ends[g:g_end] - starts[g:g_end], aggregate)
            top_s = np.concatenate([top_s, scores], axis=1)
            top_i = np.concatenate([top_i, np.broadcast_to(np.arange(g, g_end), scores.shape)], axis=1)
            if top_s.shape[1] > k:
                keep = np.argpartition(-top_s, k - 1, axis=1)[:, :k]
                top_s, top_i = np.take_along_axis(top_s, keep, 1), np.take_along_axis(top_i, keep, 1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        top_s, top_i = np.take_along_axis(top_s, order, 1), np.take_along_axis(top_i, order, 1)
        results += [[(str(names[j]), float(s)) for j, s in zip(ri, rs)] for ri, rs in zip(top_i, top_s)]
    return results


def bench(n: int, repeats: int = 30) -> dict:
    g, e32, queries = clustered_gallery(n)
    _, names, starts = g._grouped()
    t = time.perf_counter()
    g._ann = AnnIndex.build(g.embeddings)  # as Gallery.search(index="ann") builds it on first use, uncached
    build_s = time.perf_counter() - t
    paths = {
        "float32": lambda q, agg="max": float32_search(e32, names, starts, q, 5, agg),
        "exact": lambda q, agg="max": g.search(q, 5, agg),
        "ann": lambda q, agg="max": g.search(q, 5, agg, index="ann"),
    }
    out = {"templates": n, "identities": len(names), "cpu_cores": len(os.sched_getaffinity(0)), "ann_build_s": build_s}
    for agg, suffix in (("max", ""), ("top2", "_top2")):
        times = {name: [] for name in paths}
        for i in range(repeats + 1):
            for name, search in paths.items():  # interleaved: the same load for each path
                t = time.perf_counter()
                search(queries[i:i + 1], agg)
                if i:  # the first round warms up
                    times[name].append(time.perf_counter() - t)
        for name in paths:
            out[f"{name}{suffix}_ms"] = float(np.median(times[name]) * 1000)
    batch = queries[:128]
    for name, search in paths.items():
        t = time.perf_counter()
        search(batch)
        out[f"{name}_batch_faces_per_s"] = len(batch) / (time.perf_counter() - t)
    top1 = {name: [m[0][0] for m in search(queries)] for name, search in paths.items()}
    out["exact_top1_equal_float32"] = float(np.mean(np.array(top1["exact"]) == np.array(top1["float32"])))
    out["ann_recall_at_1"] = float(np.mean(np.array(top1["ann"]) == np.array(top1["exact"])))
    out["exact_vs_float32_ratio"] = out["exact_ms"] / out["float32_ms"]
    out["float32_templates_mb"] = e32.nbytes / 2**20
    out["exact_templates_mb"] = g.embeddings.nbytes / 2**20
    ivf = g._ann.index
    out["ann_index_mb"] = (ivf.code_size + 8) * ivf.ntotal / 2**20  # float16 codes + row ids, on top of the templates
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Matching speed, memory and accuracy: float32 vs float16 exact vs ANN.")
    ap.add_argument("--templates", type=int, help="one gallery size (default: 100000 and 1000000)")
    ap.add_argument("--json", action="store_true", help="one JSON object per size (a list for several) on stdout")
    ap.add_argument("--model", help="model folder for the identify latency (default: none, skipped)")
    ap.add_argument("--photo", help="a photo with a face, for the identify latency")
    a = ap.parse_args()
    runs = []
    for n in [a.templates] if a.templates else [100_000, 1_000_000]:
        r = bench(n)
        runs.append(r)
        if not a.json:
            print(f"{n:>10,d} templates ({r['identities']:,d} people), {r['cpu_cores']} cores, one face top-5 "
                  f"(max / top2): float32 {r['float32_ms']:.1f} / {r['float32_top2_ms']:.1f} ms, exact float16 "
                  f"{r['exact_ms']:.1f} / {r['exact_top2_ms']:.1f} ms (ratio {r['exact_vs_float32_ratio']:.2f}), "
                  f"ann {r['ann_ms']:.2f} / {r['ann_top2_ms']:.2f} ms")
            print(f"{'':>10s} batch of 128: float32 {r['float32_batch_faces_per_s']:.0f}, exact "
                  f"{r['exact_batch_faces_per_s']:.0f}, ann {r['ann_batch_faces_per_s']:.0f} faces/s; templates "
                  f"{r['float32_templates_mb']:.0f} MB float32 vs {r['exact_templates_mb']:.0f} MB float16 "
                  f"(+{r['ann_index_mb']:.0f} MB for the ANN index, built in {r['ann_build_s']:.1f} s)")
            print(f"{'':>10s} top-1 exact == float32: {r['exact_top1_equal_float32']:.1%}; "
                  f"ANN recall@1 against exact: {r['ann_recall_at_1']:.1%} (1000 queries)", flush=True)
    if a.json:
        print(json.dumps(runs[0] if len(runs) == 1 else runs))
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
