"""Rebuild facerec/faces/mask_misalignment.npy: how MediaPipe misaligns a face once it wears a mask.

On a masked photo the mesh guesses nose and mouth under the mask, so the 5-point alignment of
the masked photo differs from that of the same photo unmasked (median 8 % zoom-in, a few
degrees and pixels; docs/training.md). Training draws masks on crops aligned from the
*unmasked* photo; `masks.misalign` then warps them by one of these measured errors so the
model learns the crops it will see at inference. Each row maps the unmasked photo's 112-px
crop onto the masked photo's. Measured on training photos only (never RMFRD or
pairsDevTest people), the same synthetic masks as `facerec-eval --masked`, other seeds.

    python scripts/mask_misalignment.py --cache cache/lfw:$L/peopleDevTrain.txt --cache cache/celeba299 \
        --cache cache/glint24 --exclude-pairs $L/pairsDevTest.txt --n 3000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path

import numpy as np

from facerec import _quiet  # noqa: F401

OUT = Path(__file__).resolve().parents[1] / "facerec" / "faces" / "mask_misalignment.npy"
# Rows beyond these are detection failures (the mesh locked onto something else), not misalignment.
_MAX_SHIFT, _SCALE = 12.0, (0.8, 1.4)


def _measure(job: tuple[int, list[str]]) -> list[np.ndarray]:
    from facerec.faces.align import template
    from facerec.faces.align import similarity_matrix as fit
    from facerec.faces.detect import FaceDetector
    from facerec.evaluation.evaluate import mask_photo
    from facerec.images import load_image

    worker, paths = job
    det, T, rows = FaceDetector(), template(112), []
    rng = np.random.default_rng(worker)
    for path in paths:
        image = load_image(path)
        bare = det.detect(image)
        masked = mask_photo(image, int(rng.integers(2**31)), detector=det) if bare else None
        found = det.detect(masked) if masked is not None else []
        if found:
            clean, worn = np.vstack([fit(bare[0].keypoints, T), [0, 0, 1]]), np.vstack([fit(found[0].keypoints, T), [0, 0, 1]])
            rows.append((worn @ np.linalg.inv(clean))[:2])
    return rows


def main() -> None:
    from facerec.training.config import TrainConfig
    from facerec.training.train import training_cache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", action="append", required=True, help="CACHE or CACHE:PEOPLE_FILE, as facerec-train")
    ap.add_argument("--exclude-pairs", action="append", default=[], help="people in these pairs files are left out")
    ap.add_argument("--n", type=int, default=3000, help="photos to measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    cfg = TrainConfig(caches=args.cache, out="", exclude_pairs=args.exclude_pairs)
    paths = np.unique(training_cache(cfg).path)
    paths = list(np.random.default_rng(args.seed).permutation(paths)[: args.n])
    with mp.get_context("spawn").Pool(2) as pool:
        rows = np.array(sum(pool.map(_measure, [(k, paths[k::2]) for k in range(2)]), []), np.float32)
    shift = np.einsum("nij,j->ni", rows[:, :, :2], [56, 56]) + rows[:, :, 2] - 56
    scale = np.hypot(rows[:, 0, 0], rows[:, 1, 0])
    keep = (np.abs(shift) < _MAX_SHIFT).all(1) & (scale > _SCALE[0]) & (scale < _SCALE[1])
    np.save(args.out, rows[keep].astype(np.float16))
    print(f"{len(paths)} photos, {len(rows)} masked and found again, {keep.sum()} kept -> {args.out}")
    print(f"zoom median {np.median(scale[keep]):.3f} (p5 {np.percentile(scale[keep], 5):.3f}, "
          f"p95 {np.percentile(scale[keep], 95):.3f}); shift median {np.median(shift[keep], 0).round(2)} px")


if __name__ == "__main__":
    main()
