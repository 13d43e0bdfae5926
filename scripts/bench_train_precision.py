"""Training speed (faces/s) of one backbone under float32 and Keras mixed_bfloat16 on this CPU.

Each policy runs in its own process (Keras' dtype policy is global): the real trainer
(`facerec.training.train.make_trainer`, triplet loss), P×K batches of random faces, timed after warm-up.

    python scripts/bench_train_precision.py --backbone efficientnet-lite0 --steps 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def run(policy: str, backbone: str, steps: int, warmup: int) -> dict:
    import numpy as np

    from facerec import _quiet  # noqa: F401
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(policy)
    from facerec.nets.model import build_model
    from facerec.training.config import TrainConfig
    from facerec.training.train import make_trainer

    cfg = TrainConfig(caches=[], out="", backbone=backbone)
    B = cfg.identities_per_batch * cfg.images_per_identity
    embedder = build_model(backbone, cfg.input_size, cfg.embedding_dim, weights=None)
    trainer = make_trainer(embedder, cfg, 1)
    trainer.compile(optimizer=keras.optimizers.AdamW(1e-4))
    step = tf.function(trainer.train_step)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (B, cfg.input_size, cfg.input_size, 3)).astype(np.float32)
    y = {"label": np.repeat(np.arange(cfg.identities_per_batch), cfg.images_per_identity).astype(np.int32),
         "target": np.zeros((B, 1, 128), np.float32), "weight": np.zeros((B, 1), np.float32)}
    data = (tf.constant(x), {k: tf.constant(v) for k, v in y.items()})
    for _ in range(warmup):
        float(step(data)["loss"])
    t0 = time.perf_counter()
    for _ in range(steps):
        float(step(data)["loss"])
    seconds = time.perf_counter() - t0
    return {"policy": policy, "backbone": backbone, "faces_per_s": round(steps * B / seconds, 1), "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--policy", help=argparse.SUPPRESS)  # internal: run one policy in this process
    a = ap.parse_args()
    if a.policy:
        print(json.dumps(run(a.policy, a.backbone, a.steps, a.warmup)))
        return
    for policy in ("float32", "mixed_bfloat16"):
        out = subprocess.run([sys.executable, __file__, "--policy", policy, "--backbone", a.backbone,
                              "--steps", str(a.steps), "--warmup", str(a.warmup)], capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else
              f"{policy}: failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")


if __name__ == "__main__":
    main()
