"""Tight framing: where RMFRD's photo edges fall in the aligned crop, and what such framing costs.

1. For a sample of RMFRD photos, detect and align as the product does and map the photo's edges into
   the aligned crop (outside them alignment replicates the border): percentiles of the kept box.
2. LFW pairsDevTest accuracy (10 interleaved folds, cross-validated threshold) when both faces are
   framed to fixed boxes like those (`facerec.training.batches.frame`: the replication that training's
   `tight_crop` applies to random boxes).

    python scripts/tight_framing.py --model artifacts/model [--data ../shared/data] [--caches cache]
"""

import argparse
from pathlib import Path

import numpy as np

from facerec.faces.align import aligned_faces, transform_points
from facerec.training.data import data_root, load_cache
from facerec.faces.detect import FaceDetector
from facerec.evaluation.evaluate import read_pairs
from facerec.images import load_image
from facerec.evaluation.metrics import auc, kfold_accuracy
from facerec.runtime import load_embedder
from facerec.training.batches import frame

BOXES = {"full": (0, 0, 112, 112), "mild": (13, 16, 102, 110), "RMFRD median": (18, 23, 95, 102),
         "RMFRD tighter 1/4": (26, 28, 87, 96)}


def rmfrd_boxes(cache, n: int) -> np.ndarray:
    """[n, 4] x0, y0, x1, y1: the photo's edges in crop pixels (the inscribed axis-aligned box)."""
    det, out = FaceDetector(), []
    for i in np.random.default_rng(0).choice(len(cache), min(n, len(cache)), replace=False):
        image = load_image(cache.path[i])
        faces = det.detect(image)
        if not faces:
            continue
        h, w = image.shape[:2]
        c = transform_points(np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32), aligned_faces(image, faces[:1])[0].matrix)
        out.append((max(c[0, 0], c[3, 0]), max(c[0, 1], c[1, 1]), min(c[1, 0], c[2, 0]), min(c[2, 1], c[3, 1])))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--caches", type=Path, default=Path("cache"))
    ap.add_argument("--sample", type=int, default=300)
    a = ap.parse_args()
    data = data_root(a.data)
    b = rmfrd_boxes(load_cache(a.caches / "rmfrd"), a.sample)
    print(f"RMFRD photo edges in the 112 crop ({len(b)} photos), percentiles 10/25/50/75/90:")
    for k, name in enumerate(["x0", "y0", "x1", "y1"]):
        print(f"  {name}: " + " ".join(f"{v:.0f}" for v in np.percentile(b[:, k], [10, 25, 50, 75, 90])))
    lfw = load_cache(a.caches / "lfw")
    key = lambda p: str(p).split("lfw-deepfunneled/")[-1]
    pos = {key(p): i for i, p in enumerate(lfw.path)}
    pairs = read_pairs(data / "lfw" / "pairsDevTest.txt", data / "lfw" / "lfw-deepfunneled")
    i = np.array([pos[key(p.first)] for p in pairs]), np.array([pos[key(p.second)] for p in pairs])
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    embed = load_embedder(a.model).embed
    print(f"pairsDevTest, {a.model}, both faces framed:")
    for name, box in BOXES.items():
        ea, eb = (embed(np.stack([frame(f, *box) for f in lfw.faces[j]])) for j in i)
        s = np.sum(ea * eb, 1)
        acc, std = kfold_accuracy(s, same, folds)[:2]
        print(f"  {name:17s} box {box}: {100 * acc:.1f} ± {100 * std:.1f} %, AUC {auc(s, same):.3f}")


if __name__ == "__main__":
    main()
