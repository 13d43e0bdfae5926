"""Does mask-aware enrolment help? RMFRD rank-1 with 0..N synthetic-masked templates per enrolled photo.

Uses prepared caches (aligned faces + meshes): each RMFRD person is enrolled from ONE unmasked photo
(the first, as `scripts/challenge.py` does) plus distractors (one photo each of the first N LFW people);
every masked RMFRD photo is a probe. Same templates as `facerec-gallery enroll --mask-templates K`.

    python scripts/mask_templates_rmfrd.py --model artifacts/model --caches cache [--distractors 1000]
"""

import argparse
from pathlib import Path

import numpy as np

from facerec.training.data import load_cache
from facerec.search.gallery import AGGREGATES, Gallery
from facerec.faces.masks import MASK_TEMPLATE_STYLES, mask_templates
from facerec.recognizer import Recognizer, content_hash


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--caches", type=Path, default=Path("cache"))
    ap.add_argument("--distractors", type=int, default=1000)
    ap.add_argument("--max-templates", type=int, default=len(MASK_TEMPLATE_STYLES))
    a = ap.parse_args()
    rec = Recognizer(model=a.model)
    emb = rec.embedder
    r = load_cache(a.caches / "rmfrd")
    lfw = load_cache(a.caches / "lfw")
    people = sorted(set(r.identity[r.masked == 1]) & set(r.identity[r.masked == 0]))
    enrol = [int(np.where((r.identity == p) & (r.masked == 0))[0][0]) for p in people]
    probes = np.where((r.masked == 1) & np.isin(r.identity, people))[0]
    _, first = np.unique(lfw.identity, return_index=True)
    distract = np.sort(first)[: a.distractors]
    q = emb.embed(r.faces[probes])
    print(f"{len(people)} RMFRD people enrolled from one unmasked photo + {len(distract)} LFW distractors; "
          f"{len(probes)} masked probes")

    def mesh(c, i):
        m = c.mesh[i]
        return None if np.isnan(m).any() else m

    for k in range(a.max_templates + 1):
        g = Gallery("x", emb.dim)
        for c, idx in ((r, enrol), (lfw, distract)):
            for i in idx:
                crops, kinds = mask_templates(c.faces[i], mesh(c, i), content_hash(c.path[i].encode()), k)  # a cache keeps no file bytes
                g.add(c.identity[i], emb.embed(crops), kinds, [c.path[i]] * len(kinds), [b""] * len(kinds))
        for agg in AGGREGATES:
            res = g.search(q, 5, agg)
            top1 = np.mean([m[0][0] == r.identity[p] for m, p in zip(res, probes)])
            top5 = np.mean([r.identity[p] in [n for n, _ in m] for m, p in zip(res, probes)])
            print(f"mask templates {k} ({agg}): rank-1 {top1:.2%}  rank-5 {top5:.2%}")


if __name__ == "__main__":
    main()
