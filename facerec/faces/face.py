"""A detected face: what detection hands to alignment (its own module, so the two import it one way)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One detected face, all coordinates in the photo's pixels."""

    box: np.ndarray  # (4,) x, y, w, h
    score: float
    keypoints: np.ndarray  # (5, 2): left eye, right eye, nose tip, left mouth, right mouth (image left/right)
    mesh: np.ndarray | None = None  # (478, 2) or None when the mesh failed
