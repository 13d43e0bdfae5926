"""Train the mask-presence CNN (facerec/faces/presence.py) on synthetic masks, export it, measure it.

Training faces: a prepared cache of people never used for evaluation (CelebA299 by default:
`facerec-data prepare $D/celeba299/images --out cache/celeba299`), each drawn REPEATS times as
one third bare, one third with a drawn mask (facerec.faces.masks), one third with a photographic one
(facerec.faces.mask_photos, from $D/mask_overlays); masked faces are misaligned as MediaPipe misaligns
masked photos half of the time, and every face is degraded (low resolution, JPEG, exposure, edge
replication as on tight crops, flips). Measured, never trained on: RMFRD's masked/unmasked labels
(selection and report halves) and LFW (every face is bare).

    python scripts/train_mask_presence.py --cache cache/celeba299 --rmfrd cache/rmfrd --lfw cache/lfw
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from facerec.training.data import data_root, load_cache
from facerec.faces.mask_photos import apply_photo_mask
from facerec.faces.masks import apply_mask, misalign
from facerec.faces.presence import INPUT_SIZE, MODEL_PATH, MaskPresence


def replicate_edges(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Edge pixels smeared inwards, as alignment of a tight crop (RMFRD) fills the crop's border."""
    S, c, k = c.shape[0], c.copy(), int(rng.integers(6, 30))
    side = int(rng.integers(4))
    if side in (0, 3):
        c[:, :k] = c[:, k:k + 1]
    if side in (1, 3):
        c[:, S - k:] = c[:, S - k - 1:S - k]
    if side == 2:
        c[S - k:] = c[S - k - 1:S - k]
    return c


def degrade(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    S = c.shape[0]
    if rng.random() < 0.4:
        s = int(rng.integers(28, 80))
        c = cv2.resize(cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA), (S, S))
    if rng.random() < 0.3:
        _, jpg = cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 70))])
        c = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
    if rng.random() < 0.5:
        c = c[:, ::-1]
    gain, offset = rng.uniform(0.6, 1.4), rng.uniform(-30, 30)
    return np.clip(c.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def synthetic_set(cache, overlays: Path, repeats: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for _ in range(repeats):
        for face, mesh in zip(cache.faces, cache.mesh):
            has_mesh = not np.isnan(mesh).any()
            kind = int(rng.integers(3))  # 0 bare, 1 drawn mask, 2 photographic mask
            if kind == 2 and not has_mesh:
                kind = 1
            if kind == 1:
                face = apply_mask(face, mesh if has_mesh else None, seed=int(rng.integers(1 << 31)))
            elif kind == 2:
                face = apply_photo_mask(face, mesh, overlays, rng)
            if kind and rng.random() < 0.5:
                face = misalign(face, rng)
            if rng.random() < 0.3:
                face = replicate_edges(face, rng)
            crops.append(cv2.resize(degrade(face, rng), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA))
            labels.append(kind > 0)
    return np.stack(crops), np.array(labels, np.float32)


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
    ap.add_argument("--cache", required=True, help="prepared training faces (not evaluation people)")
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
        x, y = synthetic_set(load_cache(args.cache), root / "mask_overlays", args.repeats, args.seed)
        keras.utils.set_random_seed(args.seed)
        batch = 128
        model = build(args.epochs, -(-len(x) // batch))
        model.fit(x, y, batch_size=batch, epochs=args.epochs, shuffle=True, verbose=2)
        export(model, out)
        seconds = round(time.monotonic() - started)
        card = {"threshold": 0.5, "chosen_on": "sigmoid midpoint (no RMFRD cache given)",
                "trained_on": f"{len(x)} synthetic views of {Path(args.cache).name} ({y.mean():.0%} masked), "
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
