"""Mask presence per face: a small CNN on the aligned crop says whether the face wears a mask.

The face embedding is trained to look through masks, so it cannot tell whether one is there (a
linear probe on it: 59 % right on RMFRD); a 4-layer CNN on the aligned crop scaled to 64 px can. It
was trained on synthetic masks only (drawn and photographic, some re-dyed, on CelebA faces and
Glint24's non-LFW people: never on RMFRD) by `scripts/train_mask_presence.py`, which measures it:
RMFRD 98.0 % of masked photos found, 97.9 % of unmasked ones right; LFW 0.2 % called masked
(docs/gallery.md). It ships as an OpenVINO IR beside this module (about 0.25 MB, 13.6 M
multiply-adds per face at 64 px).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

MODEL_PATH = Path(__file__).with_name("mask_presence.xml")
INPUT_SIZE = 64
# mask_score at or above the card's threshold (mask_presence.json beside the IR: chosen on RMFRD's
# selection half by the training script) means masked; without a card, the sigmoid's midpoint.
DEFAULT_THRESHOLD = 0.5


class MaskPresence:
    """mask_score in 0..1 for aligned RGB uint8 crops of any size (ArcFace alignment, as facerec.faces.align makes)."""

    def __init__(self, path: str | os.PathLike = MODEL_PATH):
        from facerec._lazy import openvino_core

        config = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}  # f32 as trained, on every CPU
        self._model = openvino_core().compile_model(str(path), "CPU", config)
        card = Path(path).with_suffix(".json")
        self.card = json.loads(card.read_text()) if card.is_file() else {}
        self.threshold = float(self.card.get("threshold", DEFAULT_THRESHOLD))

    def scores(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """float32 [N] mask scores (0: bare face, 1: masked)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        small = np.stack([cv2.resize(np.asarray(c), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
                          for c in crops]).astype(np.float32)
        return np.asarray(self._model(small)[0], np.float32).reshape(-1)

    def masked(self, crops: np.ndarray | list[np.ndarray]) -> list[tuple[bool, float]]:
        """(masked, mask_score rounded to 3 places) per crop; the decision uses the score as reported."""
        out = []
        for s in self.scores(crops):
            s = round(float(s), 3)
            out.append((s >= self.threshold, s))
        return out
