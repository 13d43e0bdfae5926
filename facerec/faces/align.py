"""Warp a face onto the ArcFace 5-point template with a similarity transform."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facerec.faces.face import Face

# ArcFace / InsightFace template for 112x112 crops (image-left eye first).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
)


def template(size: int = 112) -> np.ndarray:
    """The template scaled to a `size`×`size` crop."""
    return ARCFACE_TEMPLATE * (size / 112.0)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping src onto dst (Umeyama)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    U, S, Vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        sign[-1] = -1
    R = U @ np.diag(sign) @ Vt
    scale = (S * sign).sum() / s.var(0).sum()
    t = mu_d - scale * R @ mu_s
    return np.hstack([scale * R, t[:, None]]).astype(np.float32)


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float32)
    return pts @ M[:, :2].T + M[:, 2]


def align_face(image: np.ndarray, keypoints: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Aligned `size`×`size` crop and the 2×3 matrix that produced it."""
    M = similarity_matrix(keypoints, template(size))
    crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, M


@dataclass
class AlignedFace:
    face: Face
    crop: np.ndarray  # uint8 [S, S, 3]
    mesh: np.ndarray | None  # (478, 2) in crop pixels
    matrix: np.ndarray  # (2, 3) photo pixels -> crop pixels

    @property
    def keypoints(self) -> np.ndarray:
        """The five keypoints in crop pixels."""
        return transform_points(self.face.keypoints, self.matrix)


def aligned_faces(image: np.ndarray, faces: list[Face], size: int = 112) -> list[AlignedFace]:
    out = []
    for f in faces:
        crop, M = align_face(image, f.keypoints, size)
        mesh = transform_points(f.mesh, M) if f.mesh is not None else None
        out.append(AlignedFace(face=f, crop=crop, mesh=mesh, matrix=M))
    return out
