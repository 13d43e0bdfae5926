"""Render a contact sheet of synthetic masks on aligned LFW faces, to eyeball their realism.

    python scripts/mask_sheet.py --data ../shared/data/lfw/lfw-deepfunneled --out sheet.png --n 24

Styles cycle through facerec.faces.masks.STYLES so every style appears; each tile is labelled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facerec.faces.align import aligned_faces
from facerec.faces.detect import FaceDetector
from facerec.images import load_image
from facerec.faces.masks import STYLES, apply_mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="LFW folder with one sub-folder per person, or the data root holding lfw/")
    ap.add_argument("--out", type=Path, default=Path("mask_sheet.png"))
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--size", type=int, default=112, help="aligned crop size")
    ap.add_argument("--cols", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-mesh", action="store_true", help="use the canonical mesh instead of each face's own")
    args = ap.parse_args()

    lfw = args.data / "lfw" / "lfw-deepfunneled"  # also accept the shared data root
    people = sorted(p for p in (lfw if lfw.is_dir() else args.data).iterdir() if p.is_dir())
    rng = np.random.default_rng(args.seed)
    det = FaceDetector()
    tiles = []
    for i in rng.permutation(len(people)):
        if len(tiles) == args.n:
            break
        img = load_image(min(people[i].glob("*.jpg")))
        faces = det.detect(img)
        if not faces:
            continue
        af = aligned_faces(img, faces[:1], args.size)[0]
        style = STYLES[len(tiles) % len(STYLES)]
        masked = apply_mask(af.crop, None if args.no_mesh else af.mesh, style, rng)
        label = np.full((14, args.size, 3), 255, np.uint8)
        cv2.putText(label, style, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([masked, label]))
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (-len(tiles) % args.cols)
    rows = [np.hstack(tiles[r : r + args.cols]) for r in range(0, len(tiles), args.cols)]
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"{len(tiles)} tiles -> {args.out}")


if __name__ == "__main__":
    main()
