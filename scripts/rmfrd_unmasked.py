"""How well does an embedder tell RMFRD's people apart with no mask at all?

Leave-one-out rank-1 over RMFRD's unmasked photos (prepared cache): each photo's nearest other photo
must be the same person. Separates "these people/photos are hard for the model" from "masks are hard".

    python scripts/rmfrd_unmasked.py --model artifacts/model [--dlib] [--caches cache]
"""

import argparse
from pathlib import Path

import numpy as np

from facerec.training.data import load_cache
from facerec.images import load_image
from facerec.runtime import load_embedder


def loo_rank1(emb: np.ndarray, ids: np.ndarray) -> tuple[float, int]:
    """Rank-1 over the photos that have a same-person partner (embeddings without a face skipped)."""
    ok = np.isfinite(emb).all(1)
    emb, ids = emb[ok] / np.linalg.norm(emb[ok], axis=1, keepdims=True), ids[ok]
    s = emb @ emb.T
    np.fill_diagonal(s, -np.inf)
    has = np.array([(ids == i).sum() > 1 for i in ids])
    return float(np.mean(ids[s.argmax(1)][has] == ids[has])), int(has.sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=[], help="exported model (repeatable)")
    ap.add_argument("--dlib", action="store_true", help="also dlib's descriptor on our MediaPipe boxes (peer extra)")
    ap.add_argument("--caches", type=Path, default=Path("cache"))
    a = ap.parse_args()
    c = load_cache(a.caches / "rmfrd")
    u = c.subset(c.masked == 0)
    for m in a.model:
        r, n = loo_rank1(load_embedder(m).embed(u.faces), u.identity)
        print(f"{m}: leave-one-out rank-1 {100 * r:.1f} % over {n} unmasked photos")
    if a.dlib:
        from facerec.runtime.peer import DlibPeer

        peer = DlibPeer()
        emb = np.array([v if (v := peer.embed_photo(load_image(p), b)) is not None else np.full(128, np.nan)
                        for p, b in zip(u.path, u.box)])
        r, n = loo_rank1(emb, u.identity)
        print(f"dlib on MediaPipe boxes: leave-one-out rank-1 {100 * r:.1f} % over {n} unmasked photos")


if __name__ == "__main__":
    main()
