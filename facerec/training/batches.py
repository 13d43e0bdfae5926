"""P×K training batches: the sampler, the augmentations (synthetic masks, tight framing, Keras layers) and
the live `tf.data` pipeline that applies them every step (facerec/training/cached.py draws them once instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from facerec.training.config import TrainConfig
from facerec.training.data import Cache

if TYPE_CHECKING:  # imported where used: TensorFlow starts only when training does
    import keras
    import tensorflow as tf


class PKBatches:
    """Endless P×K batches of indices; each identity's K faces mix masked and unmasked."""

    def __init__(self, labels: np.ndarray, P: int, K: int, mask_prob: float, seed: int):
        self.groups = [np.where(labels == lab)[0] for lab in np.unique(labels)]
        self.P, self.K, self.mask_prob = min(P, len(self.groups)), K, mask_prob
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_run(cls, labels: np.ndarray, cfg: TrainConfig) -> PKBatches:
        """The sampler a training run's `cfg` asks for."""
        return cls(labels, cfg.identities_per_batch, cfg.images_per_identity, cfg.mask_prob, cfg.seed)

    def __iter__(self):
        while True:
            idx, masked = [], []
            for g in self.rng.choice(len(self.groups), self.P, replace=False):
                group = self.groups[g]
                idx.append(self.rng.choice(group, self.K, replace=len(group) < self.K))
                m = self.rng.random(self.K) < self.mask_prob
                if 0 < self.mask_prob < 1 and self.K >= 2 and m.all() == m.any():
                    m[:] = False
                    m[self.rng.choice(self.K, max(1, int(round(self.mask_prob * self.K))), replace=False)] = True
                masked.append(m)
            yield np.concatenate(idx), np.concatenate(masked)


def frame(face: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The face with everything outside the box [x0, x1) × [y0, y1) replaced by the box's replicated
    border: what alignment produces where a crop runs past the photo's edge."""
    S = face.shape[0]
    box = np.ascontiguousarray(face[y0:y1, x0:x1])
    return cv2.copyMakeBorder(box, y0, S - y1, x0, S - x1, cv2.BORDER_REPLICATE)


def tight_crop(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face framed as if its photo had been cropped close around it, to a random box. RMFRD's
    photos land there (median box x 18–95, y 23–102 of 112, often tighter: scripts/tight_framing.py)."""
    S = face.shape[0]
    x0, y0 = (rng.uniform(0, [0.33, 0.36]) * S).astype(int)
    x1, y1 = S - (rng.uniform(0, [0.33, 0.24]) * S).astype(int)
    return frame(face, int(x0), int(y0), int(x1), int(y1))


def augmented_faces(cache: Cache, idx: np.ndarray, masked: np.ndarray, tight: np.ndarray,
                    rng: np.random.Generator, misalign_prob: float = 0.0, photo_masks: str | None = None,
                    photo_mask_prob: float = 0.0) -> np.ndarray:
    """The faces at `idx`, synthetic-masked where `masked` (a photographic mask from the `photo_masks`
    folder with `photo_mask_prob` where the face has a mesh, else a drawn one; then, with
    `misalign_prob`, framed as alignment frames a masked photo), then tightly framed where `tight`."""
    from facerec.faces.mask_photos import apply_photo_mask
    from facerec.faces.masks import apply_mask, misalign

    faces = cache.faces[idx].copy()
    for j in np.where(masked)[0]:
        mesh = cache.mesh[idx[j]]
        has_mesh = not np.isnan(mesh).any()
        if photo_masks and has_mesh and rng.random() < photo_mask_prob:
            faces[j] = apply_photo_mask(faces[j], mesh, photo_masks, rng)
        else:
            faces[j] = apply_mask(faces[j], mesh if has_mesh else None, seed=rng)
        if misalign_prob and rng.random() < misalign_prob:
            faces[j] = misalign(faces[j], rng)
    for j in np.where(tight)[0]:
        faces[j] = tight_crop(faces[j], rng)
    return faces


def training_faces(cache: Cache, idx: np.ndarray, masked: np.ndarray, rng: np.random.Generator,
                   cfg: TrainConfig) -> np.ndarray:
    """`augmented_faces` with the run's settings: masks and framing as `cfg` asks, tight with `--tight-prob`."""
    return augmented_faces(cache, idx, masked, rng.random(len(idx)) < cfg.tight_prob, rng, cfg.misalign_prob,
                           cfg.photo_masks, cfg.photo_mask_prob)


def augmenter(seed: int) -> keras.Sequential:
    """Flip, crop/scale jitter, colour and blur, as Keras / keras-cv preprocessing layers."""
    import keras

    try:
        import keras_cv
    except ModuleNotFoundError:
        raise ModuleNotFoundError("training needs keras-cv, in the train extra: `bash scripts/install.sh --dev`, "
                                  "or `pip install -e .[train]`") from None

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.04, 0.04, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom((-0.08, 0.08), fill_mode="nearest", seed=seed),
            keras.layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
            keras.layers.RandomContrast(0.2, seed=seed),
            keras_cv.layers.RandomGaussianBlur(kernel_size=3, factor=(0.0, 1.0), seed=seed),
        ],
        name="augment",
    )


def augmented_pixels(aug: keras.Sequential, faces: np.ndarray | tf.Tensor) -> tf.Tensor:
    """`aug` (the `augmenter`) on a batch of uint8 faces, as float pixels kept within 0..255."""
    import tensorflow as tf

    return tf.clip_by_value(aug(tf.cast(faces, tf.float32), training=True), 0.0, 255.0)


def batch_targets(targets: np.ndarray | None, idx: np.ndarray, B: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch's teacher targets [B,T,128] and weights [B,T] (0 where a teacher found no face, or none)."""
    if targets is None:
        return np.zeros((B, 1, 128), np.float32), np.zeros((B, 1), np.float32)
    t = targets[idx]
    return np.nan_to_num(t).astype(np.float32), np.isfinite(t).all(axis=2).astype(np.float32)


def target_specs(targets: np.ndarray | None, B: int) -> tuple:
    """The `tf.TensorSpec`s of what `batch_targets` yields."""
    import tensorflow as tf

    T, dim = (1, 128) if targets is None else targets.shape[1:]
    return tf.TensorSpec((B, T, dim), tf.float32), tf.TensorSpec((B, T), tf.float32)


def train_dataset(cache: Cache, labels: np.ndarray, targets: np.ndarray | None, cfg: TrainConfig):
    """tf.data over P×K batches: (float faces, {label, target [B,T,128], weight [B,T]}), T teachers."""
    import tensorflow as tf

    sampler = PKBatches.for_run(labels, cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    B, S = sampler.P * sampler.K, cfg.input_size

    def gen():
        for idx, masked in sampler:
            faces = training_faces(cache, idx, masked, rng, cfg)
            yield faces, labels[idx].astype(np.int32), *batch_targets(targets, idx, B)

    spec = (tf.TensorSpec((B, S, S, 3), tf.uint8), tf.TensorSpec((B,), tf.int32), *target_specs(targets, B))
    aug = augmenter(cfg.seed)

    def to_inputs(faces, lab, t, w):
        return augmented_pixels(aug, faces), {"label": lab, "target": t, "weight": w}

    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    return ds.map(to_inputs, num_parallel_calls=2).prefetch(2)
