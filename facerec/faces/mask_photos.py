"""Photographic masks: MaskTheFace's RGBA mask templates (MIT) fitted to a face's mesh.

The drawn masks of `facerec.faces.masks` cover shapes and colours; real masks also have photographic
texture, folds and printed cloth. Each template in `<data>/mask_overlays/` carries six anchor points
(a, b, c along the top edge from left to right; d, e, f along the bottom), which MaskTheFace places
on the face contour beside the nose, the nose bridge, the jaw and the chin: here those six points go to
the matching mesh points by a least-squares homography, the template is shaded by the face's own
light, and cloth templates may be re-textured with one of the texture photos. The templates are
data (never shipped in the package): training and studies find them with `--data`.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

# Mesh points for the template anchors a..f: face contour beside the nose bridge (left, right), the
# nose bridge, the jaw under the mouth corners (left, right) and the chin.
_ANCHORS = {"a": 234, "b": 197, "c": 454, "d": 172, "e": 152, "f": 397}
_NOSE_TIP = 1
_CONTOUR = (234, 454)
# |yaw| proxy (nose tip off the contour's middle, in contour widths) past which a side view is used.
_SIDE_VIEW = 0.12
_TEXTURED = ("cloth", "surgical")  # templates re-textured with cloth prints half of the time


@dataclass(frozen=True)
class Template:
    name: str
    rgba: np.ndarray  # [H, W, 4] uint8
    anchors: np.ndarray  # (6, 2) float32, a..f in template pixels

    @property
    def view(self) -> str:
        return "left" if self.name.endswith("_left") else "right" if self.name.endswith("_right") else "front"


@lru_cache(maxsize=4)
def load_templates(folder: str) -> tuple[tuple[Template, ...], tuple[np.ndarray, ...]]:
    """The templates and texture photos (RGB) of a `mask_overlays/` folder; ValueError if it has none."""
    root = Path(folder)
    cfg = configparser.ConfigParser()
    if not cfg.read(root / "masks.cfg"):
        raise ValueError(f"{root}: no masks.cfg (expected the mask_overlays folder)")
    templates = []
    for name in cfg.sections():
        sec = cfg[name]
        if "template" not in sec:  # MaskTheFace's "empty"/"inpaint" entries: no picture
            continue
        rgba = cv2.imread(str(root / sec["template"]), cv2.IMREAD_UNCHANGED)
        if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
            continue
        anchors = np.array([[float(v) for v in sec[f"mask_{k}"].split(",")] for k in "abcdef"], np.float32)
        templates.append(Template(name, cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA), anchors))
    textures = []
    for p in sorted((root / "textures").glob("*/*")):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            textures.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if not templates:
        raise ValueError(f"{root}: no usable mask templates")
    return tuple(templates), tuple(textures)


def view_of(mesh: np.ndarray) -> str:
    """"front", "left" or "right": which template view suits the head's turn (nose tip vs contour)."""
    left, right = mesh[_CONTOUR[0]], mesh[_CONTOUR[1]]
    width = float(np.hypot(*(right - left))) or 1.0
    off = float((mesh[_NOSE_TIP] - (left + right) / 2) @ ((right - left) / width)) / width
    return "front" if abs(off) < _SIDE_VIEW else ("left" if off < 0 else "right")


def apply_photo_mask(face: np.ndarray, mesh: np.ndarray, folder: str | Path,
                     rng: np.random.Generator) -> np.ndarray:
    """A copy of the aligned crop `face` (uint8 RGB) wearing a random photographic mask fitted to `mesh`
    ((478, 2) crop pixels, finite)."""
    templates, textures = load_templates(str(folder))
    view = view_of(mesh)
    pool = [t for t in templates if t.view == view] or list(templates)
    t = pool[int(rng.integers(len(pool)))]
    dst = np.array([mesh[_ANCHORS[k]] for k in "abcdef"], np.float32)
    H, _ = cv2.findHomography(t.anchors, dst, 0)
    if H is None:
        return face.copy()
    rgb = t.rgba[..., :3].astype(np.float32)
    if textures and t.name.split("_")[0] in _TEXTURED and rng.random() < 0.5:
        rgb = _textured(rgb, textures[int(rng.integers(len(textures)))], rng)
    rgb *= rng.uniform(0.75, 1.2, 3).astype(np.float32)  # colour and exposure of the photo
    h, w = face.shape[:2]
    warped = cv2.warpPerspective(rgb, H, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(t.rgba[..., 3].astype(np.float32) / 255.0, H, (w, h), flags=cv2.INTER_LINEAR)
    light = _light(face)
    out = face.astype(np.float32) * (1 - alpha[..., None]) + np.clip(warped * light, 0, 255) * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _textured(rgb: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The template's shading (its grey level relative to its mean) times a tiled texture print."""
    h, w = rgb.shape[:2]
    scale = rng.uniform(0.5, 1.5) * w / max(texture.shape[1], 1)
    tex = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    reps = (h // max(tex.shape[0], 1) + 1, w // max(tex.shape[1], 1) + 1, 1)
    tex = np.tile(tex, reps)[:h, :w].astype(np.float32)
    grey = rgb.mean(axis=2, keepdims=True)
    return tex * grey / max(float(grey.mean()), 1.0)


def _light(face: np.ndarray) -> np.ndarray:
    """The face's smooth illumination, normalised to mean 1: a mask in a dark photo is dark."""
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32)
    blur = cv2.GaussianBlur(grey, (0, 0), face.shape[0] / 8)
    return (blur / max(float(blur.mean()), 1.0))[..., None] * (float(grey.mean()) / 128.0) ** 0.5
