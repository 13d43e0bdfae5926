"""Train the mask-robust embedding (the `facerec-train` command, facerec/cli/train.py, calls `train`).

Batches hold P identities × K faces; each identity's K faces mix synthetic-masked
and unmasked ones, so the triplet semi-hard loss pulls a person's masked and
bare faces together. With `--teacher sface` (or dlib, or both) the student's
embedding of every (possibly masked) crop is also pulled toward the teacher's
embedding of the same photo unmasked (cosine loss, weight λ) — mask-invariant
distillation — and, with `--relational-weight`, the batch's pairwise
similarities toward each teacher's (relational distillation, which works
across embedding spaces).
Validation each epoch uses pairs from held-out training identities, never the
evaluation sets.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from facerec import _quiet  # noqa: F401  (before TensorFlow)
from facerec.training import cached
from facerec.training.batches import augmented_faces, tight_crop, train_dataset
from facerec.training.config import TrainConfig
from facerec.training.data import Cache, load_cache, read_pairs_people, read_people


def normalise_name(name: str) -> str:
    """'Barack Obama' (Glint) and 'Barack_Obama' (LFW) are the same person."""
    return re.sub(r"[\s_]+", "_", name.strip()).lower()


def training_cache(cfg: TrainConfig) -> Cache:
    """The training faces: every cache (optionally limited to a people file), minus excluded people."""
    excluded = {normalise_name(p) for f in cfg.exclude_pairs for p in read_pairs_people(f)}
    parts = []
    for spec in cfg.caches:
        path, _, people = spec.partition(":")
        c = load_cache(path)
        keep = np.array([normalise_name(n) not in excluded for n in c.identity])
        if people:
            wanted = {normalise_name(p) for p in read_people(people)}
            keep &= np.array([normalise_name(n) in wanted for n in c.identity])
        parts.append(c.subset(keep))
    merged = Cache(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in Cache.__dataclass_fields__})
    merged.identity = np.array([normalise_name(n) for n in merged.identity])
    # Cap over-represented identities and drop those without a second photo (no positive pair).
    rng = np.random.default_rng(cfg.seed)
    keep = np.zeros(len(merged), bool)
    for name in np.unique(merged.identity):
        idx = np.where(merged.identity == name)[0]
        if len(idx) >= 2:
            keep[rng.permutation(idx)[: cfg.max_images_per_identity]] = True
    return merged.subset(keep)


def split_identities(identity: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of faces whose identity is held out for validation."""
    names = np.unique(identity)
    n_val = max(2, int(round(fraction * len(names))))
    val = set(np.random.default_rng(seed).choice(names, n_val, replace=False))
    return np.array([n in val for n in identity])


def make_trainer(embedder, cfg: TrainConfig, replicas: int):
    """Wrap the embedding model so `fit` optimises triplet + λ·distillation + μ·relational distillation."""
    import keras
    import tensorflow as tf

    from facerec.nets.losses import triplet_semihard_loss

    class Trainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedder = embedder
            self.trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "triplet", "distill", "relational")}

        def call(self, x, training=False):
            return self.embedder(x, training=training)

        @property
        def metrics(self):
            return list(self.trackers.values())

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                emb = self.embedder(x, training=True)
                triplet = cfg.triplet_weight * triplet_semihard_loss(y["label"], emb, cfg.margin)
                t, w = tf.math.l2_normalize(y["target"], axis=-1), y["weight"]
                distill = relational = tf.constant(0.0)
                if cfg.teacher and cfg.teacher_weight:
                    cos = tf.reduce_sum(emb * t[:, 0], axis=-1)
                    distill = tf.reduce_sum(w[:, 0] * (1.0 - cos)) / tf.maximum(tf.reduce_sum(w[:, 0]), 1.0)
                if cfg.teacher and cfg.relational_weight:
                    sims = tf.matmul(emb, emb, transpose_b=True)
                    for k in range(t.shape[1]):  # each teacher's cosine matrix over the faces it embedded
                        both = w[:, k, None] * w[None, :, k]
                        gap = tf.square(sims - tf.matmul(t[:, k], t[:, k], transpose_b=True))
                        relational += tf.reduce_sum(both * gap) / tf.maximum(tf.reduce_sum(both), 1.0)
                loss = triplet + cfg.teacher_weight * distill + cfg.relational_weight * relational
                # Gradients are summed over replicas: scale to the global mean.
                scaled = loss / replicas
            grads = tape.gradient(scaled, self.embedder.trainable_variables)
            self.optimizer.apply(grads, self.embedder.trainable_variables)
            for k, v in (("loss", loss), ("triplet", triplet), ("distill", distill), ("relational", relational)):
                self.trackers[k].update_state(v)
            return {k: m.result() for k, m in self.trackers.items()}

    return Trainer()


def validation_pairs(cache: Cache, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """(first, second, same, second masked, second masked and tight): n genuine + n impostor pairs of
    held-out people; the last kind is a probe like RMFRD's (real mask, tight crop)."""
    rng = np.random.default_rng(seed)
    names = np.unique(cache.identity)
    groups = {nm: np.where(cache.identity == nm)[0] for nm in names}
    multi = [nm for nm in names if len(groups[nm]) >= 2]
    a, b, same = [], [], []
    for _ in range(n):
        i, j = rng.choice(groups[multi[rng.integers(len(multi))]], 2, replace=False)
        a.append(i), b.append(j), same.append(True)
        p, q = rng.choice(names, 2, replace=False)
        a.append(rng.choice(groups[p])), b.append(rng.choice(groups[q])), same.append(False)
    a, b = np.array(a), np.array(b)
    everyone, rng = np.ones(len(b), bool), np.random.default_rng(seed + 7)
    masked = augmented_faces(cache, b, everyone, ~everyone, rng, misalign_prob=1.0)
    tight = np.stack([tight_crop(f, rng) for f in masked])
    return a, b, np.array(same), masked, tight


def pair_metrics(embed, cache: Cache, pairs) -> dict:
    from facerec.evaluation.metrics import auc, best_threshold, threshold_at_far

    a, b, same, masked_b, tight_b = pairs
    ea, eb, em, et = embed(cache.faces[a]), embed(cache.faces[b]), embed(masked_b), embed(tight_b)
    s, sm, st = np.sum(ea * eb, 1), np.sum(ea * em, 1), np.sum(ea * et, 1)
    return {
        "val_acc": best_threshold(s, same)[1],
        "val_auc": auc(s, same),
        "val_masked_acc": best_threshold(sm, same)[1],
        "val_masked_auc": auc(sm, same),
        "val_tight_acc": best_threshold(st, same)[1],
        "val_tight_auc": auc(st, same),
        # Threshold at FAR 1e-2 over both kinds of probe: a provisional operating point.
        "val_threshold": threshold_at_far(np.r_[s, sm], np.r_[same, same], 1e-2),
    }


def real_mask_rank1(embed, cache: Cache) -> float:
    """Rank-1 of `cache`'s masked photos against its unmasked ones (each person's nearest photo), only on
    the selection half of its identities (facerec.evaluation.evaluate.halves): the other half stays for reporting."""
    from facerec.evaluation.evaluate import halves, identification_metrics

    cache = cache.subset(np.isin(cache.identity, list(halves(cache.identity)["selection"])))
    masked = cache.masked == 1
    e = embed(cache.faces)
    return identification_metrics(e[masked], cache.identity[masked], np.ones(masked.sum(), bool), e[~masked],
                                  cache.identity[~masked], set(cache.identity[~masked]), "cosine")["rank1"]


def selection_score(m: dict) -> float:
    """What picks the best epoch: mean validation accuracy over plain, masked, and masked+tight probes of
    held-out training people, and (with --real-masks) rank-1 of real masked photos."""
    keys = ["val_acc", "val_masked_acc", "val_tight_acc"] + (["val_real_rank1"] if "val_real_rank1" in m else [])
    return sum(m[k] for k in keys) / len(keys)


def get_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r} (default, mirrored, multiworker)")


def train(cfg: TrainConfig, resume: bool = False, progress: int = 1) -> Path:
    """Train, keep the best epoch (by `selection_score`), export it."""
    import keras

    from facerec.nets.model import build_model, export_model, load_export_weights

    out = Path(cfg.out)
    backup = out / "backup"
    if backup.exists() and not resume:
        raise SystemExit(f"{out} holds an unfinished run: pass --resume to continue it, or choose another --out")
    if cfg.photo_masks:
        from facerec.faces.mask_photos import load_templates

        try:
            load_templates(cfg.photo_masks)
        except (OSError, ValueError) as e:
            raise SystemExit(f"--photo-masks: {e}") from None
    cached.check_config(cfg.cached_views, cfg.mask_prob, cfg.freeze_fraction)
    out.mkdir(parents=True, exist_ok=True)
    cache = training_cache(cfg)
    is_val = split_identities(cache.identity, cfg.val_identities, cfg.seed)
    val, tr = cache.subset(is_val), cache.subset(~is_val)
    names, labels = np.unique(tr.identity, return_inverse=True)
    targets = None
    if cfg.teacher:
        from facerec.training.teacher import TEACHERS, teacher_targets

        teachers = cfg.teacher.split(",")
        if not set(teachers) <= set(TEACHERS):
            raise SystemExit(f"unknown teacher in {cfg.teacher!r} (choose from {', '.join(TEACHERS)})")
        if cfg.teacher_weight and cfg.embedding_dim != 128:
            raise SystemExit("cosine distillation needs --embedding-dim 128 (the teachers'); "
                             "use --teacher-weight 0 with --relational-weight")
        parts = []
        for name in teachers:
            t = teacher_targets(name, tr, Path(cfg.caches[0].partition(":")[0]).parent / f"teacher-{name}.h5",
                                progress=progress > 0)
            if name == "dlib":
                # dlib descriptors share a large common component (mean pairwise cosine ≈ 0.84 on our training
                # faces); pulling toward raw targets rewards collapsing onto it, so the student learns the
                # centred descriptors instead (same identities, same neighbourhoods).
                t = t - np.nanmean(t, axis=0)
            parts.append(t / np.linalg.norm(t, axis=1, keepdims=True))
        targets = np.stack(parts, axis=1)  # [N, teachers, 128]
    print(f"training on {len(tr)} faces of {len(names)} identities; validating on {len(val)} faces of "
          f"{len(np.unique(val.identity))} held-out identities", file=sys.stderr)

    strategy = get_strategy(cfg.strategy)
    with strategy.scope():
        pretrained = cfg.backbone in ("sface", "efficientnet-lite0")
        embedder = build_model(cfg.backbone, cfg.input_size, cfg.embedding_dim,
                               weights="pretrained" if pretrained and not cfg.init else None)
        if cfg.init:
            load_export_weights(embedder, cfg.init)
        backbone = embedder.get_layer("backbone").layers
        frozen = int(cfg.freeze_fraction * len(backbone))
        for layer in backbone[:frozen]:
            layer.trainable = False
        if pretrained:
            # Keep pretrained batch norms in inference mode: with small P×K batches their moving
            # statistics lag the fine-tuned weights and inference-mode embeddings collapse. SFace's
            # head is pretrained too, so its batch norms stay frozen as well.
            for layer in backbone + (embedder.layers if cfg.backbone == "sface" else []):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        # With cached views the trainer sees only the layers after the frozen ones (their weights are the embedder's).
        front, student = cached.split(embedder, frozen) if cfg.cached_views else (None, embedder)
        trainer = make_trainer(student, cfg, strategy.num_replicas_in_sync)
        trainer(np.zeros((1, *student.input_shape[1:]), np.float32))  # build, for BackupAndRestore
        total = cfg.epochs * cfg.steps_per_epoch
        warmup = min(300, total // 4)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate / 10, total - warmup, alpha=0.05, warmup_target=cfg.learning_rate, warmup_steps=warmup)
        trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4, global_clipnorm=5.0))

    pairs = validation_pairs(val, cfg.val_pairs, cfg.seed)
    real = load_cache(cfg.real_masks) if cfg.real_masks else None
    history: list[dict] = []
    if cfg.cached_views:
        run_front = cached.FrontRunner(front)
        views = cached.view_activations(run_front, tr, cfg, out / cached.VIEWS_FILE)
        ds = cached.cached_dataset(views, labels.astype(np.int32), targets, cfg)
    else:
        ds = train_dataset(tr, labels.astype(np.int32), targets, cfg)

    def embed(faces: np.ndarray) -> np.ndarray:
        x = run_front.once(faces) if cfg.cached_views else faces
        return student.predict(x.astype(np.float32), batch_size=128, verbose=0)

    class Validate(keras.callbacks.Callback):
        best = -1.0

        def on_epoch_end(self, epoch, logs=None):
            m = pair_metrics(embed, val, pairs)
            if real is not None:
                m["val_real_rank1"] = real_mask_rank1(embed, real)
            logs.update(m)
            history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
            (out / "history.json").write_text(json.dumps(history, indent=1))
            score = selection_score(m)
            print(f"epoch {epoch + 1}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items()), file=sys.stderr)
            if score > self.best:
                self.best = score
                embedder.save_weights(out / "best.weights.h5")

    callbacks = [
        keras.callbacks.BackupAndRestore(str(backup)),
        Validate(),
        keras.callbacks.TensorBoard(str(out / "logs"), update_freq=50),
    ]
    if resume and (out / "history.json").exists():
        history[:] = json.loads((out / "history.json").read_text())
        callbacks[1].best = max(map(selection_score, history), default=-1.0)
    t0 = time.time()
    trainer.fit(ds, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch, callbacks=callbacks, verbose=progress)
    embedder.load_weights(out / "best.weights.h5")
    best = max(history, key=selection_score)
    card = {
        "name": out.name,
        "backbone": cfg.backbone,
        "config": asdict(cfg),
        "data": {"caches": cfg.caches, "exclude_pairs": cfg.exclude_pairs, "train_faces": int(len(tr)),
                 "train_identities": int(len(names)), "val_identities": int(len(np.unique(val.identity)))},
        # `init` is a path that may be overwritten later (artifacts/model is): name its weights for good.
        "init_fingerprint": json.loads((Path(cfg.init) / "model_card.json").read_text()).get("fingerprint")
        if cfg.init else None,
        "epochs_trained": len(history),
        "best_epoch": best["epoch"],
        "train_seconds_this_run": round(time.time() - t0),
        "validation": {k: v for k, v in best.items() if k.startswith("val_")},
        "threshold": best["val_threshold"],
        "threshold_source": "held-out training identities, FAR 1e-2 over masked+unmasked pairs (provisional; "
                            "`facerec-eval calibrate-gallery` replaces it)",
    }
    export_model(embedder, out, card)
    import shutil

    shutil.rmtree(backup, ignore_errors=True)
    for name in (cached.VIEWS_FILE, cached.VIEWS_CARD):  # kept only for --resume: gigabytes beside the export
        (out / name).unlink(missing_ok=True)
    return out
