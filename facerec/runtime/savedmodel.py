"""TensorFlow's own runtime: an export's saved_model/ loaded with `tf.saved_model.load` (the model of record)."""

from __future__ import annotations

import os

import numpy as np

from facerec.runtime.base import (CARD_FILE, OUTPUT_KEY, SIGNATURE, BadModel, Embedder, check_export, fingerprint,
                                  first_line, read_card)


class SavedModelEmbedder(Embedder):
    """An export folder (or its saved_model/ subfolder) run by TensorFlow."""

    runtime = "tensorflow"

    def __init__(self, path: str | os.PathLike):
        root = check_export(path)
        self.path = root
        self.card = read_card(path, root / CARD_FILE)
        from facerec import _quiet  # noqa: F401  (before TensorFlow)
        import tensorflow as tf

        self._tf = tf
        try:
            self.module = tf.saved_model.load(str(root / "saved_model"))
        except Exception as e:  # TF raises many types, often with multi-line messages
            raise BadModel(path, f"cannot load saved_model ({first_line(e)})") from None
        self.serve = self.module.signatures.get(SIGNATURE)
        if self.serve is None:
            raise BadModel(path, f"saved_model has no {SIGNATURE!r} signature")
        spec = self.serve.structured_input_signature[1].get("faces")
        out = self.serve.structured_outputs.get(OUTPUT_KEY)
        if spec is None or out is None or spec.dtype != tf.uint8 or spec.shape.rank != 4:
            raise BadModel(path, f"{SIGNATURE} is not uint8 faces [N,S,S,3] -> {OUTPUT_KEY}")
        self.input_size = int(spec.shape[1])
        self.dim = int(out.shape[-1])
        self._take_card(path, CARD_FILE)
        self.fingerprint = self.card.get("fingerprint") or fingerprint(v.numpy() for v in self.module.weights)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.serve(faces=self._tf.constant(batch))[OUTPUT_KEY].numpy()
