"""Train the mask-presence CNN (facerec/faces/presence.py) on synthetic masks, export it, measure it.

Training faces: prepared caches of people never used for evaluation (`--cache`, repeatable:
`facerec-data prepare $D/celeba299/images --out cache/celeba299`, likewise glint24); faces of
people who are in LFW (measured below) are left out, which keeps Glint24's 6 non-LFW people. Each face
is drawn REPEATS times as one third bare, one third with a drawn mask (facerec.faces.masks), one third
with a photographic one (facerec.faces.mask_photos, from $D/mask_overlays); 40 % of the masks are
re-dyed (skin tones, dark cloth, printed patterns), since real masks come in colours neither source draws.
Masked faces are misaligned as MediaPipe misaligns masked photos half of the time (bare ones a quarter
of the time, so misalignment alone says nothing); bare faces sometimes get a non-mask occluder (a hand,
a microphone); any face may get glasses. Every face is then reframed (shift, zoom about the eyes, tilt), degraded
(edge replication as on tight crops, retouching, blur, low resolution, JPEG, exposure, white balance,
flips). Measured, never trained on: RMFRD's masked/unmasked labels (selection and report halves) and
LFW (every face is bare).

    python scripts/train_mask_presence.py --cache cache/celeba299 --cache cache/glint24 \
        --rmfrd cache/rmfrd --lfw cache/lfw
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from facerec.training.data import Cache, data_root, load_cache
from facerec.faces.mask_photos import apply_photo_mask
from facerec.faces.masks import apply_mask, misalign
from facerec.faces.presence import INPUT_SIZE, MODEL_PATH, MaskPresence


# Mask colours the two mask sources rarely draw but RMFRD's photos show (RGB).
_SKIN = [(232, 190, 165), (222, 175, 150), (240, 205, 190), (205, 160, 130), (235, 195, 195), (215, 185, 160)]
_DARK = [(30, 30, 34), (45, 40, 38), (34, 42, 66), (58, 52, 48), (70, 70, 76)]


def redye(masked: np.ndarray, bare: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mask (the pixels `masked` changed in `bare`) in a new colour or print, its shading kept."""
    region = (np.abs(masked.astype(np.int16) - bare).max(-1) > 12).astype(np.uint8)
    if region.sum() < 50:
        return masked
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    alpha = cv2.GaussianBlur(region.astype(np.float32), (5, 5), 0)[..., None]
    grey = masked.astype(np.float32).mean(-1, keepdims=True)
    shade = np.clip(grey / max(float(grey[region > 0].mean()), 1.0), 0.5, 1.5)
    kind = rng.random()
    if kind < 0.4:
        colour = np.float32(_SKIN[rng.integers(len(_SKIN))]) + rng.normal(0, 8, 3)
    elif kind < 0.7:
        colour = np.float32(_DARK[rng.integers(len(_DARK))]) + rng.normal(0, 5, 3)
    else:  # a two-colour print: stripes, checks or dots
        S = masked.shape[0]
        ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
        f, angle = rng.uniform(0.15, 0.6), rng.uniform(0, np.pi)
        u, v = xs * np.cos(angle) + ys * np.sin(angle), -xs * np.sin(angle) + ys * np.cos(angle)
        style = int(rng.integers(3))
        wave = np.sin(f * u) if style == 0 else np.sin(f * u) * np.sin(f * v)
        ink = (wave > (0.6 if style == 2 else 0.0))[..., None]
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        colour = np.where(ink, c1, c2)
    dyed = np.clip(np.broadcast_to(colour, masked.shape) * shade, 0, 255)
    return np.clip(masked * (1 - alpha) + dyed * alpha + 0.5, 0, 255).astype(np.uint8)


def occlude(face: np.ndarray, kp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bare face with something that is not a mask in front of it: a hand at the cheek or chin, or a
    microphone below the mouth (RMFRD's bare photos called masked show both)."""
    S, out = face.shape[0], face.copy()
    mouth = kp[3:5].mean(0)
    if rng.random() < 0.6:  # hand: the face's own skin tone, an ellipse from the side or below
        nx, ny = int(kp[2, 0]), int(kp[2, 1])  # the nose tip, cheeks either side
        skin = np.median(face[ny - 4:ny + 4, nx - 12:nx + 12].reshape(-1, 3), 0)
        colour = tuple(float(c) for c in np.clip(skin * rng.uniform(0.85, 1.1), 0, 255))
        side = rng.choice([-1, 1])
        centre = (int(mouth[0] + side * rng.uniform(0.15, 0.32) * S), int(mouth[1] + rng.uniform(-0.05, 0.2) * S))
        axes = (int(rng.uniform(0.12, 0.2) * S), int(rng.uniform(0.18, 0.3) * S))
        cv2.ellipse(out, centre, axes, float(rng.uniform(-40, 40)), 0, 360, colour, -1, cv2.LINE_AA)
    else:  # microphone: a dark or coloured ball on a handle, at or below the mouth
        colour = tuple(float(c) for c in (rng.uniform(10, 80, 3) if rng.random() < 0.6 else rng.uniform(0, 255, 3)))
        r = int(rng.uniform(0.07, 0.13) * S)
        centre = (int(mouth[0] + rng.uniform(-0.15, 0.15) * S), int(mouth[1] + rng.uniform(0.02, 0.15) * S))
        cv2.line(out, centre, (centre[0] + int(rng.uniform(-0.2, 0.2) * S), S), colour, max(2, r // 2), cv2.LINE_AA)
        cv2.circle(out, centre, r, colour, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(out, (3, 3), 0) if rng.random() < 0.5 else out


def glasses(face: np.ndarray, kp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spectacles or sunglasses over the eyes, on bare and masked faces alike."""
    out, eyes = face.copy(), kp[:2]
    r = float(np.linalg.norm(eyes[1] - eyes[0])) * rng.uniform(0.3, 0.42)
    frame = tuple(float(c) for c in rng.uniform(0, 70, 3))
    dark = rng.random() < 0.4
    for e in eyes:
        centre, axes = tuple(int(v) for v in e), (int(r), int(r * rng.uniform(0.65, 0.85)))
        if dark:
            cv2.ellipse(out, centre, axes, 0, 0, 360, tuple(float(c) for c in rng.uniform(5, 50, 3)), -1, cv2.LINE_AA)
        cv2.ellipse(out, centre, axes, 0, 0, 360, frame, max(1, int(r / 6)), cv2.LINE_AA)
    cv2.line(out, (int(eyes[0, 0] + r), int(eyes[0, 1])), (int(eyes[1, 0] - r), int(eyes[1, 1])), frame, 1, cv2.LINE_AA)
    return out


def reframe(c: np.ndarray, kp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop shifted, zoomed and tilted about the eyes, as detection and alignment frame faces differently:
    zoomed in, the lower face (a mask) leaves by the bottom edge, as on RMFRD's masked crops framed on the eyes."""
    S = c.shape[0]
    eyes = kp[:2].mean(0)
    M = cv2.getRotationMatrix2D((float(eyes[0]), float(eyes[1])), rng.uniform(-12, 12), rng.uniform(0.85, 1.5))
    M[:, 2] += rng.uniform(-0.1, 0.1, 2) * S
    return cv2.warpAffine(c, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def replicate_edges(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Edge pixels smeared inwards, as alignment of a tight crop (RMFRD) fills the crop's border: one side
    or several, the bottom included (a chin smeared downwards); one side up to half the crop, as on a head
    turned far to the side."""
    S, c = c.shape[0], c.copy()
    first = int(rng.integers(4))
    for side in range(4):
        if side != first and rng.random() >= 0.4:
            continue
        k = int(rng.integers(6, S // 2 if side == first else S // 4))
        if side == 0:
            c[:, :k] = c[:, k:k + 1]
        elif side == 1:
            c[:, S - k:] = c[:, S - k - 1:S - k]
        elif side == 2:
            c[S - k:] = c[S - k - 1:S - k]
        else:
            c[:k] = c[k:k + 1]
    return c


def degrade(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    S = c.shape[0]
    if rng.random() < 0.2:  # retouching: the smoothed skin of edited celebrity photos
        c = cv2.bilateralFilter(c, 7, float(rng.uniform(30, 90)), float(rng.uniform(3, 8)))
    if rng.random() < 0.25:
        c = cv2.GaussianBlur(c, (0, 0), float(rng.uniform(0.6, 2.0)))
    if rng.random() < 0.4:
        s = int(rng.integers(28, 80))
        c = cv2.resize(cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA), (S, S))
    if rng.random() < 0.3:
        _, jpg = cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 70))])
        c = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
    if rng.random() < 0.5:
        c = c[:, ::-1]
    # exposure, and white balance half of the time
    gain = rng.uniform(0.6, 1.4) * (rng.uniform(0.85, 1.15, 3) if rng.random() < 0.5 else 1.0)
    return np.clip(c.astype(np.float32) * gain + rng.uniform(-30, 30), 0, 255).astype(np.uint8)


def synthetic_set(cache, overlays: Path, repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for _ in range(repeats):
        for bare, mesh, kp in zip(cache.faces, cache.mesh, cache.keypoints):
            has_mesh = not np.isnan(mesh).any()
            kind = int(rng.integers(3))  # 0 bare, 1 drawn mask, 2 photographic mask
            if kind == 2 and not has_mesh:
                kind = 1
            face = bare
            if kind == 1:
                face = apply_mask(face, mesh if has_mesh else None, seed=int(rng.integers(1 << 31)))
            elif kind == 2:
                face = apply_photo_mask(face, mesh, overlays, rng)
            if kind and rng.random() < 0.4:
                face = redye(face, bare, rng)
            if not kind and rng.random() < 0.15:
                face = occlude(face, kp, rng)
            if rng.random() < 0.2:
                face = glasses(face, kp, rng)
            if rng.random() < (0.5 if kind else 0.25):
                face = misalign(face, rng)
            if rng.random() < 0.5:
                face = reframe(face, kp, rng)
            if rng.random() < 0.3:
                face = replicate_edges(face, rng)
            crops.append(cv2.resize(degrade(face, rng), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA))
            labels.append(kind > 0)
    return np.stack(crops), np.array(labels, np.float32)


def training_faces(caches: list[str], root: Path):
    """The prepared caches as one, less the faces of people in LFW (LFW is measured: every face bare)."""
    lfw = {p.name for p in (root / "lfw" / "lfw-deepfunneled").iterdir()} if (root / "lfw").is_dir() else set()
    parts = [load_cache(c) for c in caches]
    merged = Cache(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Cache)})
    keep = ~np.isin(np.char.replace(merged.identity.astype(str), " ", "_"), sorted(lfw))
    return merged.subset(keep)


def build(epochs: int, steps_per_epoch: int):
    import keras
    from keras import layers

    pixels = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(pixels)
    for filters in (16, 32, 64, 64):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(pixels, layers.Dense(1, activation="sigmoid", name="mask_score")(x))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * steps_per_epoch)
    model.compile(keras.optimizers.Adam(schedule), "binary_crossentropy", metrics=["accuracy"])
    return model


def export(model, out: Path) -> None:
    """The Keras model as an OpenVINO IR (out.xml + out.bin): what facerec.faces.presence loads, no TensorFlow."""
    import openvino as ov
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.float32)])
    def serve(x):
        return model(x, training=False)

    ov.save_model(ov.convert_model(serve.get_concrete_function()), str(out), compress_to_fp16=False)


def selection_half(rmfrd) -> np.ndarray:
    """RMFRD's selection half: the identities at even positions in sorted order (data README)."""
    ids = sorted(set(rmfrd.identity))
    return np.isin(rmfrd.identity, ids[0::2])


def choose_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    """The threshold that makes the worse of the two rates (masked found, bare faces right) best."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    worst = [min(np.mean(scores[truth] >= t), np.mean(scores[~truth] < t)) for t in grid]
    return float(grid[int(np.argmax(worst))])


def measure(path: Path, rmfrd, lfw) -> dict:
    """Right calls on RMFRD (all, selection and report halves of the sorted identities) and LFW's false masks,
    at the card's threshold."""
    presence = MaskPresence(path)
    out = {"threshold": presence.threshold}
    if rmfrd is not None:
        called = presence.scores(rmfrd.faces) >= presence.threshold
        truth = rmfrd.masked == 1
        selection = selection_half(rmfrd)
        for name, keep in (("rmfrd", np.ones(len(truth), bool)), ("rmfrd_selection", selection),
                           ("rmfrd_report", ~selection)):
            t, c = truth[keep], called[keep]
            out[name] = {"right": round(float(np.mean(t == c)), 4), "masked_found": round(float(np.mean(c[t])), 4),
                         "unmasked_right": round(float(np.mean(~c[~t])), 4), "photos": int(keep.sum())}
    if lfw is not None:
        called = presence.scores(lfw.faces) >= presence.threshold
        out["lfw_called_masked"] = {"rate": round(float(np.mean(called)), 4), "faces": len(called)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", action="append", required=True,
                    help="prepared training faces (repeatable; people in LFW are left out)")
    ap.add_argument("--rmfrd", help="prepared RMFRD cache (measured only)")
    ap.add_argument("--lfw", help="prepared LFW cache (measured only)")
    ap.add_argument("--data", help="data folder holding mask_overlays/ (default: FACEREC_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(MODEL_PATH), help="IR to write (.xml; the .bin goes beside it)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measure-only", action="store_true", help="measure --out as it is")
    args = ap.parse_args()
    out = Path(args.out)
    rmfrd = load_cache(args.rmfrd) if args.rmfrd else None
    lfw = load_cache(args.lfw) if args.lfw else None
    if not args.measure_only:
        from facerec import _quiet  # noqa: F401  (before TensorFlow)
        import keras

        root = data_root(args.data)
        if root is None:
            raise SystemExit("no data folder: give --data or set FACEREC_DATA")
        started = time.monotonic()
        faces = training_faces(args.cache, root)
        x, y = synthetic_set(faces, root / "mask_overlays", args.repeats, args.seed)
        keras.utils.set_random_seed(args.seed)
        batch = 128
        model = build(args.epochs, -(-len(x) // batch))
        model.fit(x, y, batch_size=batch, epochs=args.epochs, shuffle=True, verbose=2)
        export(model, out)
        seconds = round(time.monotonic() - started)
        card = {"threshold": 0.5, "chosen_on": "sigmoid midpoint (no RMFRD cache given)",
                "trained_on": f"{len(x)} synthetic views of {len(faces)} faces of "
                              f"{'+'.join(Path(c).name for c in args.cache)} less LFW's people "
                              f"({y.mean():.0%} masked), "
                              f"{args.epochs} epochs, seed {args.seed}, {seconds} s"}
        if rmfrd is not None:
            keep = selection_half(rmfrd)
            scores = MaskPresence(out).scores(rmfrd.faces[keep])
            card.update(threshold=choose_threshold(scores, rmfrd.masked[keep] == 1),
                        chosen_on="RMFRD selection half: best worse-of(masked found, bare faces right)")
        out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    measured = measure(out, rmfrd, lfw)
    print(json.dumps(measured, indent=2))
    card = json.loads(out.with_suffix(".json").read_text())
    out.with_suffix(".json").write_text(json.dumps({**card, "measured": measured}, indent=2) + "\n")


if __name__ == "__main__":
    main()
