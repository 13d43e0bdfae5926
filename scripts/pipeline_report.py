"""Detection/alignment figures from prepared caches (run `facerec-data prepare` first).

Usage: python scripts/pipeline_report.py CACHE_ROOT [--data DIR]
Prints, per dataset, images found and faces aligned, RMFRD split into masked
and unmasked, the failures, and the mean eye-centre error against the ArcFace
template on 200 LFW faces.
"""

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from facerec.faces.align import template
from facerec.training.data import data_root, discover, load_cache, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("caches", type=Path)
    ap.add_argument("--data", default=None)
    a = ap.parse_args()
    data = data_root(a.data)
    for name in ("lfw", "five_celebrity", "glint24", "celeba299", "rmfrd"):
        cache = a.caches / name
        if not cache.is_dir():
            continue
        n = len(discover(data / name))
        s = summary(cache, n)
        print(f"{name:15s} {s['faces']:6d} / {s['images']:6d} aligned ({s['faces'] / s['images']:.2%}); failed: {len(s['failed'])}")
        if name == "rmfrd":
            masked = {str(data / name / r["path"]): r["masked"] for r in csv.DictReader(open(data / name / "manifest.csv"))
                      if r["cross_identity_duplicate"] != "1"}
            failed = {f["path"] for f in s["failed"]}
            for flag, label in (("1", "masked"), ("0", "unmasked")):
                paths = [p for p, m in masked.items() if m == flag]
                ok = sum(p not in failed for p in paths)
                print(f"  rmfrd {label:9s} {ok:5d} / {len(paths):5d} ({ok / len(paths):.2%})")
        for f in s["failed"]:
            print(f"    {f['path']}: {f['reason']}")
    lfw = a.caches / "lfw"
    if lfw.is_dir():
        c = load_cache(lfw)
        rng = np.random.default_rng(0)
        pick = rng.choice(len(c), 200, replace=False)
        err = np.linalg.norm(c.keypoints[pick, :2] - template(c.faces.shape[1])[:2], axis=2).mean()
        mesh = np.isfinite(c.mesh[pick, 0, 0]).mean()
        print(f"LFW eye-centre error vs template, 200 random faces: {err:.2f} px mean at {c.faces.shape[1]} px "
              f"(mesh keypoints on {mesh:.0%} of them)")


if __name__ == "__main__":
    main()
