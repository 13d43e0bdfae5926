"""Faces per second of each embedder and runtime, in one process, on the same photos and aligned crops.

    .venv/bin/python scripts/bench_embed.py [--photos 64] [--model artifacts/model] [--also FILE.xml] [--json]

SFace needs its weights (`facerec-data fetch-sface`).

Two figures per embedder: "crops/s" embeds the same 112-px aligned crops (the
network alone; dlib takes each crop as its face box), "photos/s" runs the whole
photo pipeline including the embedder's own detector. Also: the mask-presence CNN
on the same crops (what the masked path adds per face; its scoring needs no other
embedding). Photos are the first photo of the first N LFW people. The machine is shared: compare figures from
one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facerec import _quiet  # noqa: F401  (before TensorFlow / MediaPipe)
from facerec.training.data import data_root, discover
from facerec.evaluation.embedders import DlibEmbedder, EmbedderSpec, PipelineEmbedder
from facerec.images import load_image


def photos(n: int) -> list[np.ndarray]:
    root = data_root()
    if root is None:
        sys.exit("bench_embed: face data not found (set FACEREC_DATA or place it at ../shared/data)")
    first: dict[str, str] = {}
    for item in discover(root / "lfw" / "lfw-deepfunneled"):
        first.setdefault(item.identity, item.path)
        if len(first) == n:
            break
    return [load_image(p) for p in first.values()]


def rate(fn, items: int, repeats: int = 1) -> float:
    fn()  # warm-up: graph tracing, first-call allocations
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return items * repeats / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--model", default=None, help="Our model export (default: artifacts/model if present).")
    ap.add_argument("--also", action="append", default=[], metavar="FILE.xml",
                    help="Another OpenVINO file of the model to time beside it (repeatable).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from facerec.runtime.base import default_model_path
    from facerec.runtime import load_embedder

    images = photos(args.photos)
    specs = [("sface", EmbedderSpec("sface")), ("dlib", EmbedderSpec("dlib")), ("imagenet", EmbedderSpec("imagenet"))]
    model = Path(args.model) if args.model else default_model_path()
    if (model / "saved_model").is_dir():
        # The default runtime, then TensorFlow itself, then any other OpenVINO files (e.g. the float32 one).
        default = load_embedder(model)
        specs[:0] = [(f"model (openvino {default.card['openvino']['precision']}, default)", EmbedderSpec("model", str(model))),
                     ("model (tensorflow)", EmbedderSpec("model", str(model / "saved_model")))]
        specs[2:2] = [(f"model (openvino {load_embedder(x).card['openvino']['precision']})", EmbedderSpec("model", x))
                      for x in args.also]
    embedders = [s.build() for _, s in specs]
    pipeline = next(e for e in embedders if isinstance(e, PipelineEmbedder))
    crops = [pipeline.crop(im) for im in images]
    crops = np.stack([c for c in crops if c is not None])
    from facerec.faces.presence import MaskPresence

    presence = MaskPresence()
    results = {"photos": len(images), "crops": len(crops),
               "detect_align_per_s": rate(lambda: [pipeline.crop(im) for im in images], len(images)),
               "mask_presence_crops_per_s": rate(lambda: presence.scores(crops), len(crops), repeats=3)}
    for (label, _), e in zip(specs, embedders):
        if isinstance(e, DlibEmbedder):
            on_crops = rate(lambda: e.embed_crops(crops), len(crops))
        else:
            on_crops = rate(lambda: e.network.embed(crops), len(crops), repeats=3)
        results[label] = {"crops_per_s": on_crops, "photos_per_s": rate(lambda: e.embed_photos(images), len(images))}
    if args.json:
        print(json.dumps(results))
        return
    print(f"{len(images)} LFW photos, {len(crops)} aligned 112-px crops; "
          f"our detection + alignment: {results['detect_align_per_s']:.1f} photos/s; "
          f"mask presence: {results['mask_presence_crops_per_s']:.1f} crops/s")
    print(f"{'embedder':<28} {'crops/s':>9} {'photos/s':>9}")
    for label, _ in specs:
        r = results[label]
        print(f"{label:<28} {r['crops_per_s']:>9.1f} {r['photos_per_s']:>9.1f}")


if __name__ == "__main__":
    main()
