"""Rebuild facerec/faces/canonical_mesh.npy: the mean aligned face mesh of LFW faces.

masks.apply_mask falls back to this mesh when a crop has none, so it must sit
where MediaPipe puts an average ArcFace-aligned 112-px face.

    python scripts/canonical_mesh.py --data ../shared/data/lfw/lfw-deepfunneled --n 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facerec.faces.align import aligned_faces
from facerec.faces.detect import FaceDetector
from facerec.images import load_image

OUT = Path(__file__).resolve().parents[1] / "facerec" / "faces" / "canonical_mesh.npy"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="LFW folder with one sub-folder per person, or the data root holding lfw/")
    ap.add_argument("--n", type=int, default=200, help="number of faces (one per person)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    lfw = args.data / "lfw" / "lfw-deepfunneled"  # also accept the shared data root
    people = sorted(p for p in (lfw if lfw.is_dir() else args.data).iterdir() if p.is_dir())
    order = np.random.default_rng(args.seed).permutation(len(people))
    det = FaceDetector()
    meshes = []
    for i in order:
        if len(meshes) == args.n:
            break
        path = min(people[i].glob("*.jpg"))
        img = load_image(path)
        faces = det.detect(img)
        if faces and faces[0].mesh is not None:
            meshes.append(aligned_faces(img, faces[:1], 112)[0].mesh)
    mean = np.mean(meshes, axis=0).astype(np.float32)
    np.save(args.out, mean)
    print(f"{len(meshes)} faces -> {args.out}")


if __name__ == "__main__":
    main()
