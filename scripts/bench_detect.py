"""Detection at every scale: recall by face size and kind, false faces per canvas, canvases/s.

    .venv/bin/python scripts/bench_detect.py [--canvases 120] [--seed 0] [--json]

Faces of ../shared/data are pasted at known places and sizes onto generated canvases: LFW photos of
the pairsDevTest people (unmasked, and with a synthetic mask: `facerec.evaluation.evaluate.mask_photo`) and RMFRD
crops (real masks, and the same people unmasked; a detection benchmark, nothing is trained or chosen on
it). Each source's known box is the main face our detector finds on the source photo itself (LFW and
RMFRD sized photos: one pass, the detection this benchmark does not question), scaled with it; a
source with no face found there, or an RMFRD crop (the face fills it) whose box is under 0.6 of its
width, is left out (counted): such a box is a part of the face (one eye and a cheek, 0.4-0.6 of the width,
where the whole face found on a canvas counted as a miss and a false face; 98 % of masked crops' boxes are
0.66-1.07 of their width). LFW sources are pasted as a crop of twice the box around the face (the
subject, not the bystanders some LFW photos hold), RMFRD crops whole.

The declared, seeded set (nothing chosen because it is found):
- `scattered`: `--canvases` canvases, sizes cycling 640×480, 1280×960, 1920×1440, 4000×3000, each with
  1-4 faces of widths drawn from 40-800 px (at most half the canvas height), kinds drawn evenly;
- `grid`: 640×480 with 12 faces of 90 px (4×3) and 1280×960 with 48 faces of 100 px (8×6), `--grids` of each;
- `empty`: `--empty` canvases with no face (smooth, noise and texture backgrounds, all sizes).
Backgrounds are seeded: smooth gradients, low-frequency colour noise, or a tiled texture from
mask_overlays/textures. A face counts as found when a detection has IoU >= 0.3 with its known box (one
detection per face, greedily by IoU). LFW photos hold bystanders, whole or cut by the crop's edge:
the other faces our detector finds on the source photo seen twice as large (so the multi-scale path
runs on it) are pasted with it as bystanders, and a detection on one (IoU >= 0.3, or its centre
inside one's box clipped to the paste) is counted apart, as a bystander; every other detection is a
false face.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facerec import _quiet  # noqa: F401  (before MediaPipe)
from facerec.training.data import data_root, read_people
from facerec.faces.detect import FaceDetector, iou
from facerec.images import load_image

SIZES = ((640, 480), (1280, 960), (1920, 1440), (4000, 3000))
FACE_WIDTHS = (40, 60, 80, 100, 150, 200, 300, 400, 600, 800)
KINDS = ("lfw", "lfw-synthetic-mask", "rmfrd-masked", "rmfrd-unmasked")
GRIDS = (((640, 480), 4, 3, 90), ((1280, 960), 8, 6, 100))
MATCH_IOU = 0.3


@dataclass
class Source:
    image: np.ndarray  # the patch pasted (RGB)
    box: np.ndarray  # x y w h of the face in the patch
    kind: str
    others: list[np.ndarray] = field(default_factory=list)  # bystanders' boxes in the patch


@dataclass
class Canvas:
    name: str
    image: np.ndarray
    boxes: list[np.ndarray] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    bystanders: list[np.ndarray] = field(default_factory=list)


def sources(root: Path, det: FaceDetector, per_kind: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """`per_kind` sources of each kind (seeded), and how many were left out for want of a face."""
    from facerec.evaluation.evaluate import mask_photo

    lfw = root / "lfw" / "lfw-deepfunneled"
    people = read_people(root / "lfw" / "peopleDevTest.txt")
    rows = [r for r in csv.DictReader(open(root / "rmfrd" / "manifest.csv")) if r["cross_identity_duplicate"] == "0"]
    pools = {
        "lfw": [sorted((lfw / p).glob("*.jpg"))[0] for p in people],
        "lfw-synthetic-mask": [sorted((lfw / p).glob("*.jpg"))[-1] for p in people],
        "rmfrd-masked": [root / "rmfrd" / r["path"] for r in rows if r["masked"] == "1"],
        "rmfrd-unmasked": [root / "rmfrd" / r["path"] for r in rows if r["masked"] == "0"],
    }
    out, missing = {}, {}
    for kind, pool in pools.items():
        picks = [pool[i] for i in rng.permutation(len(pool))[:per_kind]]
        out[kind], missing[kind] = [], 0
        for i, path in enumerate(picks):
            image = load_image(path)
            faces = det.detect(image)
            if not faces:
                missing[kind] += 1
                continue
            box = faces[0].box.astype(np.float64)
            if box[2] < 0.6 * image.shape[1] and kind.startswith("rmfrd"):  # a part of the face, not a known box
                missing[kind] += 1
                continue
            others = []
            if kind.startswith("lfw"):
                big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
                others = [f.box / 2 for f in det.detect(big) if iou(f.box / 2, box) < MATCH_IOU]
            if kind == "lfw-synthetic-mask":
                image = mask_photo(image, int(rng.integers(2**31)), detector=det)
            if kind.startswith("lfw"):
                x0y0 = box[:2]
                image, box = _around(image, box, 2.0)
                others = [o - np.array([*(x0y0 - box[:2]), 0, 0]) for o in others]
            out[kind].append(Source(image, box, kind, others))
    return out, missing


def _around(image: np.ndarray, box: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """A crop of `factor` times the box around its centre (clipped to the photo), and the box in it."""
    h, w = image.shape[:2]
    cx, cy, side = box[0] + box[2] / 2, box[1] + box[3] / 2, factor * max(box[2], box[3])
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), box - np.array([x0, y0, 0, 0])


def background(size: tuple[int, int], rng: np.random.Generator, textures: list[Path],
               style: str | None = None) -> np.ndarray:
    w, h = size
    style = style or rng.choice(["smooth", "noise", "texture"])
    if style == "smooth":
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (np.linspace(0, 1, w)[None, :, None] * rng.uniform(0.3, 1)
             + np.linspace(0, 1, h)[:, None, None] * rng.uniform(0, 0.7))
        t = t / t.max()
        img = a * (1 - t) + b * t + rng.normal(0, 2, (h, w, 1))
    elif style == "noise":
        small = rng.uniform(0, 255, (int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        tex = load_image(textures[int(rng.integers(len(textures)))])
        scale = rng.uniform(0.5, 3.0) * max(w, h) / 2000
        tex = cv2.resize(tex, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        reps = (h // tex.shape[0] + 1, w // tex.shape[1] + 1, 1)
        img = np.tile(tex, reps)[:h, :w]
    return np.clip(img, 0, 255).astype(np.uint8)


def paste(canvas: Canvas, src: Source, width: float, x: float, y: float, cell: tuple | None = None) -> None:
    """Paste `src` scaled so its face is `width` px wide, the face's top-left at (x, y), within `cell`
    (x0, y0, x1, y1; default the canvas)."""
    s = width / src.box[2]
    patch = cv2.resize(src.image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    px, py = int(round(x - src.box[0] * s)), int(round(y - src.box[1] * s))
    H, W = canvas.image.shape[:2]
    ph, pw = patch.shape[:2]
    cx0, cy0, cx1, cy1 = (int(v) for v in (cell or (0, 0, W, H)))
    x0, y0, x1, y1 = max(px, cx0), max(py, cy0), min(px + pw, cx1), min(py + ph, cy1)
    canvas.image[y0:y1, x0:x1] = patch[y0 - py:y1 - py, x0 - px:x1 - px]
    canvas.boxes.append(np.array([px + src.box[0] * s, py + src.box[1] * s, src.box[2] * s, src.box[3] * s]))
    canvas.kinds.append(src.kind)
    for o in src.others:  # clipped to what of it was pasted
        bx0, by0 = max(px + o[0] * s, x0), max(py + o[1] * s, y0)
        bx1, by1 = min(px + (o[0] + o[2]) * s, x1), min(py + (o[1] + o[3]) * s, y1)
        if bx1 > bx0 and by1 > by0:
            canvas.bystanders.append(np.array([bx0, by0, bx1 - bx0, by1 - by0]))


def scattered(i: int, pool: dict, rng: np.random.Generator, textures: list[Path]) -> Canvas:
    w, h = SIZES[i % len(SIZES)]
    c = Canvas(f"scattered-{i}-{w}x{h}", background((w, h), rng, textures))
    taken: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, 5))):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        src = pool[kind][int(rng.integers(len(pool[kind])))]
        widths = [f for f in FACE_WIDTHS if f <= h / 2]
        width = float(widths[int(rng.integers(len(widths)))])
        height = width * src.box[3] / src.box[2]
        margin = 0.5 * width  # the patch's own surroundings, kept clear of other faces
        for _ in range(50):  # a free place, or this face is left out
            x, y = rng.uniform(margin, w - width - margin), rng.uniform(margin, h - height - margin)
            r = np.array([x - margin, y - margin, width + 2 * margin, height + 2 * margin])
            if all(iou(r, t) == 0 and not _overlap(r, t) for t in taken):
                taken.append(r)
                paste(c, src, width, x, y)
                break
    return c


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def grid(size: tuple[int, int], cols: int, rows: int, width: int, pool: dict, rng: np.random.Generator,
         textures: list[Path], i: int) -> Canvas:
    w, h = size
    c = Canvas(f"grid-{cols * rows}x{width}px-{i}", background((w, h), rng, textures))
    cw, ch = w / cols, h / rows
    for r in range(rows):
        for k in range(cols):
            kind = KINDS[(r * cols + k) % len(KINDS)]
            src = pool[kind][int(rng.integers(len(pool[kind])))]
            height = width * src.box[3] / src.box[2]
            paste(c, src, width, k * cw + (cw - width) / 2, r * ch + (ch - height) / 2,
                  (k * cw, r * ch, (k + 1) * cw, (r + 1) * ch))
    return c


def score(canvas: Canvas, boxes: list[np.ndarray]) -> tuple[list[bool], int, int]:
    """Which known faces were found (IoU >= MATCH_IOU, one detection each), how many other detections
    are on a bystander and how many are false."""
    pairs = sorted(((iou(b, t), i, j) for i, b in enumerate(boxes) for j, t in enumerate(canvas.boxes)), reverse=True)
    used, found = set(), [False] * len(canvas.boxes)
    for o, i, j in pairs:
        if o < MATCH_IOU:
            break
        if i not in used and not found[j]:
            used.add(i)
            found[j] = True
    rest = [b for i, b in enumerate(boxes) if i not in used]
    on_bystander = sum(any(iou(b, o) >= MATCH_IOU or _inside(b[:2] + b[2:] / 2, o) for o in canvas.bystanders)
                       for b in rest)
    return found, on_bystander, len(rest) - on_bystander


def _inside(point: np.ndarray, box: np.ndarray) -> bool:
    return box[0] <= point[0] <= box[0] + box[2] and box[1] <= point[1] <= box[1] + box[3]


def build(root: Path, det: FaceDetector, n: int, grids: int, empty: int, seed: int) -> tuple[list[Canvas], dict]:
    rng = np.random.default_rng(seed)
    textures = sorted((root / "mask_overlays" / "textures").glob("*/*"))
    pool, missing = sources(root, det, 60, rng)
    canvases = [scattered(i, pool, rng, textures) for i in range(n)]
    canvases += [grid(size, cols, rows, width, pool, rng, textures, i) for size, cols, rows, width in GRIDS
                 for i in range(grids)]
    styles = ("smooth", "noise", "texture")
    canvases += [Canvas(f"empty-{styles[i % 3]}-{i}", background(SIZES[i % len(SIZES)], rng, textures, styles[i % 3]))
                 for i in range(empty)]
    return canvases, missing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--canvases", type=int, default=120)
    ap.add_argument("--grids", type=int, default=2)
    ap.add_argument("--empty", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = data_root()
    if root is None:
        sys.exit("bench_detect: face data not found (set FACEREC_DATA or place it at ../shared/data)")
    det = FaceDetector()
    canvases, missing = build(root, det, args.canvases, args.grids, args.empty, args.seed)
    det.detect(canvases[0].image)  # warm-up
    by_size, by_kind, grids, by_both = (defaultdict(lambda: [0, 0]) for _ in range(4))
    false, bystanders, start, timing, each_grid = [], [], time.perf_counter(), defaultdict(list), defaultdict(list)
    for c in canvases:
        t = time.perf_counter()
        faces = det.detect(c.image)
        timing[f"{c.image.shape[1]}x{c.image.shape[0]}"].append(time.perf_counter() - t)
        found, on_bystander, fp = score(c, [f.box for f in faces])
        false.append(fp)
        bystanders.append(on_bystander)
        if c.name.startswith("grid"):  # tallied apart, and per grid: the bars are 11 of 12, 46 of 48
            layout = c.name.rsplit("-", 1)[0]
            each_grid[layout].append(int(sum(found)))
            grids[layout][0] += int(sum(found))
            grids[layout][1] += len(found)
            continue
        for b, k, ok in zip(c.boxes, c.kinds, found):
            width = int(round(b[2] / 10) * 10)
            for tally in (by_size[width], by_kind[k], by_both[width, k]):
                tally[0] += ok
                tally[1] += 1
    seconds = time.perf_counter() - start
    big = [v for k, v in by_size.items() if k >= 60]
    result = {
        "canvases": len(canvases), "sources_left_out": missing, "match_iou": MATCH_IOU,
        "recall_by_width": {k: v for k, v in sorted(by_size.items())},
        "recall_by_kind": dict(by_kind),
        "recall_60px_up_by_kind": {k: [sum(v[i] for (w, kk), v in by_both.items() if kk == k and w >= 60)
                                       for i in (0, 1)] for k in KINDS},
        "seconds_per_canvas": {k: float(np.mean(v)) for k, v in timing.items()},
        "slowest_seconds": {k: float(np.max(v)) for k, v in timing.items()},
        "recall_60px_up": [sum(v[0] for v in big), sum(v[1] for v in big)],
        "grids": dict(grids),
        "grid_found_each": dict(each_grid),
        "false_faces_per_canvas": float(np.mean(false)),
        "bystanders_found": int(sum(bystanders)),
        "false_faces_on_empty": int(sum(f for c, f in zip(canvases, false) if c.name.startswith("empty"))),
        "canvases_per_s": len(canvases) / seconds,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{len(canvases)} canvases ({args.canvases} scattered, {2 * args.grids} grids, {args.empty} empty), "
          f"seed {args.seed}; sources without a face left out: {missing}; found = IoU >= {MATCH_IOU}")
    print("recall by face width (px):")
    for k, (a, n) in sorted(by_size.items()):
        print(f"  {k:>4}: {a:>3}/{n:<3} {100 * a / n:5.1f} %")
    print("recall by kind (scattered):")
    for k, (a, n) in by_kind.items():
        print(f"  {k:<20} {a:>3}/{n:<3} {100 * a / n:5.1f} %")
    print("faces >= 60 px by kind (scattered):")
    for k, (a, n) in result["recall_60px_up_by_kind"].items():
        print(f"  {k:<20} {a:>3}/{n:<3} {100 * a / max(n, 1):5.1f} %")
    a, n = result["recall_60px_up"]
    print(f"faces >= 60 px: {a}/{n} = {100 * a / max(n, 1):.1f} %")
    for k, (a, n) in grids.items():
        print(f"{k}: {a}/{n} (each grid: {', '.join(map(str, each_grid[k]))} of {n // len(each_grid[k])})")
    print(f"false faces per canvas: {result['false_faces_per_canvas']:.3f} "
          f"({result['false_faces_on_empty']} on the {args.empty} empty canvases; "
          f"{result['bystanders_found']} detections on bystanders of LFW photos, not counted); "
          f"{result['canvases_per_s']:.2f} canvases/s (detection only, {len(canvases)} canvases)")
    print("seconds of detection per canvas, by size (mean, slowest): " +
          ", ".join(f"{k} {v:.2f} {result['slowest_seconds'][k]:.2f}"
                    for k, v in sorted(result["seconds_per_canvas"].items(), key=lambda kv: kv[1])))


if __name__ == "__main__":
    main()
