"""Is rank-1 unchanged by the float16 search? RMFRD and LFW identification on the same real embeddings
through the float32 search facerec had before (scripts/bench_match.py keeps it), `Gallery.search`
(float16, exact) and `Gallery.search(index="ann")`.

- RMFRD: each person with both kinds of photo enrolled from one unmasked photo plus 3 synthetic-mask
  templates (as `facerec-gallery enroll` does), among one photo each of N LFW people as distractors;
  every masked RMFRD photo is a probe.
- LFW: every person enrolled from their first photo; every other photo is a probe.
Uses the prepared caches (aligned faces and meshes) of `facerec-data prepare`.

    python scripts/search_rank1.py [--model artifacts/model] [--caches cache] [--distractors 1000]
"""

import argparse
from pathlib import Path

import numpy as np
from bench_match import float32_search

from facerec.training.data import load_cache
from facerec.search.gallery import Gallery
from facerec.faces.masks import mask_templates as templates_of
from facerec.recognizer import Recognizer, content_hash


def compare(name: str, g: Gallery, e32: np.ndarray, q: np.ndarray, truth: np.ndarray) -> None:
    """Print rank-1 of each search path and how many probes' top-1 identity differs from float32's."""
    _, names, starts = g._grouped()
    for agg in ("max", "top2"):
        ref = float32_search(e32, names, starts, q, 5, agg)
        paths = {"float32": ref, "float16 exact": g.search(q, 5, agg), "ann": g.search(q, 5, agg, index="ann")}
        line = []
        for label, res in paths.items():
            top1 = np.array([m[0][0] for m in res])
            differ = int(np.sum(top1 != np.array([m[0][0] for m in ref])))
            gap = max(abs(a[0][1] - b[0][1]) for a, b in zip(res, ref))
            line.append(f"{label} rank-1 {np.mean(top1 == truth):.4%}"
                        + (f" ({differ} top-1 differ, top-1 score within {gap:.1e})" if label != "float32" else ""))
        print(f"{name} ({agg}, {len(g):,d} templates, {len(q):,d} probes): " + "; ".join(line), flush=True)


def enrol(rec: Recognizer, rows: list[tuple], mask_templates: int) -> tuple[Gallery, np.ndarray]:
    """A gallery of (cache, index) rows, and its templates in float32 in the gallery's row order."""
    crops, kinds = [], []
    for c, i in rows:
        mesh = None if np.isnan(c.mesh[i]).any() else c.mesh[i]
        cr, kn = templates_of(c.faces[i], mesh, content_hash(c.path[i].encode()), mask_templates)  # a cache keeps no file bytes
        crops.append(cr)
        kinds.append(kn)
    e32 = embed(rec, np.concatenate(crops))
    g, at = Gallery("x", rec.embedder.dim), 0
    for (c, i), kn in zip(rows, kinds):
        g.add(c.identity[i], e32[at:at + len(kn)], kn, [c.path[i]] * len(kn), [b""] * len(kn))
        at += len(kn)
    return g, e32


def embed(rec: Recognizer, faces: np.ndarray) -> np.ndarray:
    return np.concatenate([rec.embedder.embed(faces[b:b + 256]) for b in range(0, len(faces), 256)]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="artifacts/model")
    ap.add_argument("--caches", type=Path, default=Path("cache"))
    ap.add_argument("--distractors", type=int, default=1000)
    a = ap.parse_args()
    rec = Recognizer(model=a.model)
    r, lfw = load_cache(a.caches / "rmfrd"), load_cache(a.caches / "lfw")
    _, first = np.unique(lfw.identity, return_index=True)
    first = np.sort(first)

    people = sorted(set(r.identity[r.masked == 1]) & set(r.identity[r.masked == 0]))
    enrolled = [(r, int(np.where((r.identity == p) & (r.masked == 0))[0][0])) for p in people]
    g, e32 = enrol(rec, enrolled + [(lfw, int(i)) for i in first[:a.distractors]], 3)
    probes = np.where((r.masked == 1) & np.isin(r.identity, people))[0]
    compare("RMFRD", g, e32, embed(rec, r.faces[probes]), r.identity[probes])

    g, e32 = enrol(rec, [(lfw, int(i)) for i in first], 0)
    probes = np.setdiff1d(np.arange(len(lfw.identity)), first)
    compare("LFW", g, e32, embed(rec, lfw.faces[probes]), lfw.identity[probes])


if __name__ == "__main__":
    main()
