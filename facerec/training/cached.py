"""Training on cached activations (`--cached-views V`): the frozen layers run once per view, not every step.

With a frozen front (`--freeze-fraction`), live training spends most of each step in layers that do not
learn (SFace's whole backbone: ~30 faces/s on 2 cores). Here each training face gets V fixed augmented
views, drawn once (the first unmasked, the others synthetic-masked, each tightly framed with
`--tight-prob`); the frozen layers run over them once (OpenVINO, f32) and their outputs are kept, float16,
in the run folder; batches then draw one view per face (a masked one with `--mask-prob`) and only the
trainable layers run. The price: V views per face instead of fresh augmentation every step.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from facerec.training.batches import PKBatches, augmented_pixels, augmenter, batch_targets, target_specs, training_faces
from facerec.training.config import TrainConfig
from facerec.training.data import Cache

VIEWS_FILE, VIEWS_CARD = "views.npy", "views.json"


def check_config(cached_views: int, mask_prob: float, freeze_fraction: float) -> None:
    """Refuse, before any heavy work, a cached run that cannot be made."""
    if cached_views < 0:
        raise SystemExit(f"--cached-views must be 0 (live augmentation) or at least 2, not {cached_views}")
    if cached_views == 1 and mask_prob > 0:
        raise SystemExit("--cached-views 1 leaves no masked view: use 2 or more (one unmasked, the rest masked)")
    if cached_views and freeze_fraction <= 0:
        raise SystemExit("--cached-views needs frozen layers to cache: set --freeze-fraction above 0")


def split(embedder, frozen_layers: int):
    """(front, back): the embedder's first `frozen_layers` backbone layers, and the rest of it as a model
    from their output. Only a chain splits there; checked on random pixels."""
    import keras

    backbone = embedder.get_layer("backbone")
    if frozen_layers <= 1:  # its first layer is the input
        raise SystemExit("--cached-views: --freeze-fraction freezes no layer of this backbone; raise it")
    cut = backbone.layers[frozen_layers - 1]
    front = keras.Model(backbone.input, cut.output, name="front")
    head = embedder.layers[embedder.layers.index(backbone) + 1:]
    x = start = keras.Input(tuple(cut.output.shape[1:]), name="activations")
    try:
        for layer in backbone.layers[frozen_layers:] + head:
            x = layer(x)
        back = keras.Model(start, x, name="trainable")
        pixels = np.random.default_rng(0).uniform(0, 255, (2,) + tuple(embedder.input_shape[1:])).astype(np.float32)
        same = np.allclose(back(front(pixels)), embedder(pixels), atol=1e-4)
    except (ValueError, TypeError, NotImplementedError):  # Keras, on a layer that takes more than one input
        same = False
    if not same:
        raise SystemExit(f"--cached-views: this backbone does not split after layer {cut.name!r} (its layers are "
                         "not a chain there); choose another --freeze-fraction, or train live")
    return front, back


class FrontRunner:
    """The frozen front on OpenVINO (f32: exact to 1e-5 of Keras, ~6x faster on this CPU)."""

    def __init__(self, front):
        import openvino as ov
        import tensorflow as tf

        from facerec._lazy import openvino_core

        spec = tf.TensorSpec([None, *front.input_shape[1:]], tf.float32)
        fn = tf.function(lambda x: front(x, training=False), input_signature=[spec], autograph=False)
        self.net = openvino_core().compile_model(ov.convert_model(fn), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.shape = tuple(front.output.shape[1:])
        self._seen: dict[bytes, np.ndarray] = {}

    def __call__(self, faces: np.ndarray, batch: int = 64) -> np.ndarray:
        out = np.empty((len(faces),) + self.shape, np.float16)
        for s in range(0, len(faces), batch):
            out[s:s + batch] = self.net(np.asarray(faces[s:s + batch], np.float32))[0]
        return out

    def once(self, faces: np.ndarray) -> np.ndarray:
        """`self(faces)`, run once per distinct set of faces and then remembered: validation embeds the same
        faces every epoch (~15 s of a 25-29-s head-only epoch here)."""
        faces = np.ascontiguousarray(faces)
        key = repr((faces.shape, faces.dtype.str)).encode() + hashlib.blake2b(faces.data, digest_size=16).digest()
        if key not in self._seen:
            self._seen[key] = self(faces)
        return self._seen[key]


def view_activations(front: FrontRunner, cache: Cache, cfg: TrainConfig, path: Path) -> np.ndarray:
    """[V, N, ...] float16 activations of V augmented views of each face of `cache` (view 0 unmasked),
    memory-mapped from `path`; a file made for the same faces and settings is reused (--resume)."""
    V, N = cfg.cached_views, len(cache)
    card = {"views": V, "faces": N, "shape": list(front.shape), "seed": cfg.seed, "tight_prob": cfg.tight_prob,
            "misalign_prob": cfg.misalign_prob, "photo_masks": cfg.photo_masks, "photo_mask_prob": cfg.photo_mask_prob,
            "paths": hashlib.sha256("\n".join(cache.path).encode()).hexdigest()}
    card_path = path.with_name(VIEWS_CARD)
    if path.is_file() and card_path.is_file() and json.loads(card_path.read_text()) == card:
        return np.load(path, mmap_mode="r")
    print(f"caching {V} views of {N} faces ({V * N * int(np.prod(front.shape)) * 2 / 2**30:.1f} GiB)", file=sys.stderr)
    tmp = path.with_suffix(".tmp.npy")
    views = np.lib.format.open_memmap(tmp, "w+", np.float16, (V, N) + front.shape)
    aug, rng = augmenter(cfg.seed), np.random.default_rng(cfg.seed + 2)
    for v in range(V):
        for s in range(0, N, 256):
            idx = np.arange(s, min(N, s + 256))
            faces = training_faces(cache, idx, np.full(len(idx), v > 0), rng, cfg)
            views[v, idx] = front(np.asarray(augmented_pixels(aug, faces)))
    views.flush()
    del views
    os.replace(tmp, path)
    card_path.write_text(json.dumps(card) + "\n")
    return np.load(path, mmap_mode="r")


def cached_dataset(views: np.ndarray, labels: np.ndarray, targets: np.ndarray | None, cfg: TrainConfig):
    """tf.data over P×K batches of cached views: a masked view (1..V-1) where the sampler masks, else view 0."""
    import tensorflow as tf

    sampler = PKBatches.for_run(labels, cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    V, B = views.shape[0], sampler.P * sampler.K

    def gen():
        for idx, masked in sampler:
            view = np.where(masked, rng.integers(1, max(V, 2), len(idx)), 0)
            yield (views[view, idx].astype(np.float32), labels[idx].astype(np.int32),
                   *batch_targets(targets, idx, B))

    spec = (tf.TensorSpec((B,) + views.shape[2:], tf.float32), tf.TensorSpec((B,), tf.int32), *target_specs(targets, B))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    return ds.map(lambda x, lab, t, w: (x, {"label": lab, "target": t, "weight": w})).prefetch(2)
