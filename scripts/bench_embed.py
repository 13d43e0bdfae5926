"""Faces per second of each embedder and runtime, in one process, on the same photos and aligned crops.

    .venv/bin/python scripts/bench_embed.py [--photos 64] [--model artifacts/model] [--also FILE.xml] [--json]

SFace needs its weights (`facerec-data fetch-sface`).

Two figures per embedder: "crops/s" embeds the same 112-px aligned crops (the
network alone; dlib takes each crop as its face box), "photos/s" runs the whole
photo pipeline including the embedder's own detector. Our model runs on its default runtime, on
TensorFlow, and, where the default computes in bf16, as the same float32 file in f32. Also: the mask-presence CNN
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
from facerec.evaluation.embedders import DlibEmbedder, EmbedderSpec, PipelineEmbedder
from facerec.faces.masks import MASK_TEMPLATES
from facerec.faces.presence import MaskPresence
from facerec.images import load_image
from facerec.runtime import load_embedder
from facerec.runtime.base import default_model_path
from facerec.runtime.openvino import OpenVINOEmbedder
from facerec.training.data import data_root, discover


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


def label(e) -> str:
    return f"openvino {e.precision} file, {e.inference_precision}" if e.runtime == "openvino" else e.runtime


def pipeline_of(path: Path, inference: str) -> PipelineEmbedder:
    return PipelineEmbedder("model", OpenVINOEmbedder(path, inference), mask_templates=MASK_TEMPLATES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--model", default=None, help="Our model export (default: artifacts/model if present).")
    ap.add_argument("--also", action="append", default=[], metavar="FILE.xml",
                    help="Another OpenVINO file of the model to time beside it (repeatable).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    images = photos(args.photos)
    specs = [("sface", EmbedderSpec("sface").build), ("dlib", EmbedderSpec("dlib").build),
             ("imagenet", EmbedderSpec("imagenet").build)]
    model = Path(args.model) if args.model else default_model_path()
    if (model / "saved_model").is_dir():
        # The default runtime, TensorFlow itself, the default's file in f32 if it runs bf16, other files.
        default = load_embedder(model)
        ours = [(f"model (default: {label(default)})", EmbedderSpec("model", str(model)).build),
                ("model (tensorflow)", EmbedderSpec("model", str(model / "saved_model")).build)]
        if getattr(default, "inference_precision", None) == "bf16":
            ours.append(("model (openvino float32 file, f32)", lambda: pipeline_of(default.path, "f32")))
        ours += [(f"model ({label(load_embedder(x))})", EmbedderSpec("model", x).build) for x in args.also]
        specs[:0] = ours
    embedders = [build() for _, build in specs]
    pipeline = next(e for e in embedders if isinstance(e, PipelineEmbedder))
    crops = [pipeline.crop(im) for im in images]
    crops = np.stack([c for c in crops if c is not None])
    presence = MaskPresence()
    results = {"photos": len(images), "crops": len(crops),
               "detect_align_per_s": rate(lambda: [pipeline.crop(im) for im in images], len(images)),
               "mask_presence_crops_per_s": rate(lambda: presence.scores(crops), len(crops), repeats=3)}
    for (name, _), e in zip(specs, embedders):
        if isinstance(e, DlibEmbedder):
            on_crops = rate(lambda: e.embed_crops(crops), len(crops))
        else:
            on_crops = rate(lambda: e.network.embed(crops), len(crops), repeats=3)
        results[name] = {"crops_per_s": on_crops, "photos_per_s": rate(lambda: e.embed_photos(images), len(images))}
    if args.json:
        print(json.dumps(results))
        return
    print(f"{len(images)} LFW photos, {len(crops)} aligned 112-px crops; "
          f"our detection + alignment: {results['detect_align_per_s']:.1f} photos/s; "
          f"mask presence: {results['mask_presence_crops_per_s']:.1f} crops/s")
    print(f"{'embedder':<44} {'crops/s':>9} {'photos/s':>9}")
    for name, _ in specs:
        r = results[name]
        print(f"{name:<44} {r['crops_per_s']:>9.1f} {r['photos_per_s']:>9.1f}")


if __name__ == "__main__":
    main()
