"""Draw synthetic face masks on aligned face crops.

Real masked photos are scarce, so training pairs get a mask painted from the
face mesh: the outline follows the face oval from the nose bridge to under the
chin and always stays below the eyes, and each style has its own colours,
pleats, seams, prints, straps and lighting so the embedder cannot learn one
fixed overlay. Pure numpy + cv2 (~2 ms per 112-px face, only the window round the
mask is rendered) because it runs inside the tf.data pipeline via tf.numpy_function.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

STYLES = ("surgical_blue", "surgical_white", "black_cloth", "patterned_cloth", "n95")

# MediaPipe FaceMesh (refine_landmarks=True) indices, as (image-left, image-right) pairs.
_IRIS = [468, 473]
_EAR_SIDE = [234, 454]  # face contour at cheekbone level: top corners of the mask
_CHEEK_SIDE = [93, 323]
# Under-eye / cheek points from the face contour inwards to the side of the nose: the top edge.
_TOP = ((116, 345), (117, 346), (118, 347), (119, 348), (120, 349), (47, 277), (114, 343), (196, 419))
_BRIDGE = (6, 195)  # the top edge crosses the nose bridge between these
# Face oval from cheek level down to (but not including) the chin point 152: the lower outline.
_OVAL = ((93, 323), (132, 361), (58, 288), (172, 397), (136, 365), (150, 379), (149, 378), (176, 400), (148, 377))
_CHIN = 152
_TOP_CHAIN = np.array([a for a, _ in _TOP] + [b for _, b in _TOP[::-1]])  # left contour -> nose -> right contour
_OVAL_CHAIN = np.array([a for a, _ in _OVAL] + [_CHIN] + [b for _, b in _OVAL[::-1]])
_NOSE_TIP = 1
_MOUTH = (61, 291)
_EYE_TO_MOUTH = 1.157  # eye line to mouth centre over eye distance, ArcFace template
_LIP = 0  # upper lip centre
# Nose tip, alae, nostrils, mouth corners, lips and chin: always under the mask, even on a turned head.
_MUST_COVER = [1, 2, 98, 327, 64, 294, 129, 358, 61, 291, 0, 17, 152]

# Eye safety, in eye distances (35 px at 112 px): the top edge stays _FLOOR_EYES below the eye line
# (an eye box of +-8 px at 112 px is +-0.23) except on the nose bridge, more than _EYE_CLEAR_X from
# either iris, where it may rise to _FLOOR_BRIDGE over _BRIDGE_HALF_WIDTH.
_FLOOR_EYES, _FLOOR_BRIDGE, _EYE_CLEAR_X, _BRIDGE_HALF_WIDTH = 0.34, 0.2, 0.32, 0.18
# Hard guarantee on top: nothing changes within this half-side (in eye distances) round either iris.
_EYE_BOX = 0.26
_TOP_SAMPLES = 25
_LOWER_SAMPLES = 40
_ROUND_TOP, _ROUND_LOWER = 3, 2  # how many outline samples each rounded top corner replaces
_SMOOTH = np.array([1, 2, 3, 4, 3, 2, 1], np.float64) / 16

_CANONICAL_PATH = Path(__file__).with_name("canonical_mesh.npy")
_MISALIGNMENT_PATH = Path(__file__).with_name("mask_misalignment.npy")


@lru_cache(maxsize=1)
def _canonical() -> np.ndarray:
    mesh = np.load(_CANONICAL_PATH).astype(np.float32)
    mesh.flags.writeable = False
    return mesh


@lru_cache(maxsize=1)
def _misalignments() -> np.ndarray:
    return np.load(_MISALIGNMENT_PATH).astype(np.float32)


def misalign(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`face` (a masked crop aligned from its unmasked photo) warped by one of the alignment errors
    MediaPipe was measured to make on masked photos (scripts/mask_misalignment.py): the crop
    inference would make of the same photo once masked."""
    S, rows = face.shape[0], _misalignments()
    M = rows[rng.integers(len(rows))].copy()
    M[:, 2] *= S / 112.0
    return cv2.warpAffine(face, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def canonical_mesh(size: int = 112) -> np.ndarray:
    """Mean MediaPipe mesh of ArcFace-aligned LFW faces, in `size`-px crop coordinates."""
    return _canonical() * np.float32(size / 112.0)


def mask_polygon(
    mesh: np.ndarray | None,
    size: int = 112,
    style: str = "surgical_blue",
    jitter: np.random.Generator | None = None,
) -> np.ndarray:
    """Outline (K, 2) of the region the mask covers, in crop pixels (straps excluded).

    `mesh` None uses the canonical mesh for a `size`-px crop; `jitter` None gives the nominal shape,
    a Generator the randomly jittered one.
    """
    _check_style(style)
    mesh = _resolve_mesh(mesh, size, size)
    frame = _Frame(mesh)
    return frame.to_image(_outline(frame.to_face(mesh), style, jitter, frame.scale).polygon()).astype(np.float32)


# Synthetic-masked templates enrolment adds per photo, and their styles in this order (cycled beyond five).
MASK_TEMPLATES = 3
MASK_TEMPLATE_STYLES = ("surgical_blue", "black_cloth", "n95", "surgical_white", "patterned_cloth")


def mask_templates(crop: np.ndarray, mesh: np.ndarray | None, sha256: str,
                   count: int = MASK_TEMPLATES) -> tuple[np.ndarray, list[str]]:
    """An enrolled photo's crop and `count` synthetic-masked copies ([1 + count, S, S, 3], kinds
    "photo", "synthetic-mask:<style>"), seeded by the photo's content hash (hex `sha256`): the same
    photo gives the same templates whatever its path."""
    crops, kinds = [crop], ["photo"]
    seed = int(sha256[:16], 16)
    for i in range(count):
        style = MASK_TEMPLATE_STYLES[i % len(MASK_TEMPLATE_STYLES)]
        crops.append(apply_mask(crop, mesh, style=style, seed=seed + i))
        kinds.append(f"synthetic-mask:{style}")
    return np.stack(crops), kinds


def apply_mask(
    face: np.ndarray,
    mesh: np.ndarray | None = None,
    style: str | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """A copy of the aligned crop `face` (uint8 [S, S, 3] RGB) wearing a synthetic mask.

    `mesh` is the (478, 2) FaceMesh in crop pixels; None or NaN uses the canonical mesh. `style`
    None picks one of STYLES at random; the same `seed` always draws the same mask.
    """
    face = np.asarray(face)
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {face.dtype} {face.shape}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if isinstance(style, bytes):  # as tf.numpy_function passes string tensors
        style = style.decode()
    style = STYLES[int(rng.integers(len(STYLES)))] if style is None else style
    _check_style(style)
    h, w = face.shape[:2]
    mesh = _resolve_mesh(mesh, h, w)
    frame = _Frame(mesh)
    shape = _outline(frame.to_face(mesh), style, rng, frame.scale)
    colour = _base_colour(style, rng)
    strap_paths, strap_rgb, strap_width, strap_alpha = _straps(style, rng, shape, colour)

    # Only the window around the mask and straps is rendered.
    poly = frame.to_image(shape.polygon())
    strap_paths = [frame.to_image(p) for p in strap_paths]
    pts = np.concatenate([poly, *strap_paths])
    pad = 4 * frame.px + 2
    x0, y0 = (max(0, int(v)) for v in np.floor(pts.min(0) - pad))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max() + pad))), min(h, int(np.ceil(pts[:, 1].max() + pad)))
    if x1 <= x0 or y1 <= y0:
        return face.copy()
    shift = np.array([x0, y0], np.float32)
    canvas = _Canvas(frame, shape, (x0, y0, x1, y1), (h, w))
    px = canvas.px
    img = face[y0:y1, x0:x1].astype(np.float32)

    # Coverage: anti-aliased fill, softened a little like a fabric edge in a soft photo.
    cover = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(cover, [_fixed(poly - shift)], 255, cv2.LINE_AA, shift=3)
    soft = _photo_softness(face, px) * rng.uniform(0.85, 1.15)
    alpha = cv2.GaussianBlur(cover, (0, 0), max(0.45, 0.7 * soft) * px).astype(np.float32) * np.float32(1 / 255)
    # Edges of the mask curve away from the camera and darken.
    rim = cv2.GaussianBlur(cover, (0, 0), 1.3 * px).astype(np.float32) * np.float32(1 / 255)

    ink, shade, sheen = _surface(style, rng, canvas, colour)
    shade *= 1 - rng.uniform(0.15, 0.35) * np.clip(1 - rim, 0, 1)
    light = _scene_light(face, rng)[y0:y1, x0:x1]
    shade *= light
    mask_rgb = ink * shade[..., None] + sheen[..., None]
    mask_rgb = cv2.GaussianBlur(mask_rgb, (0, 0), soft * px)
    mask_rgb += (rng.uniform(1.0, 3.0) * rng.standard_normal(mask_rgb.shape[:2], np.float32))[..., None]

    # Contact shadow on the jaw and neck just below the lower edge.
    drop = max(1, int(round(2 * px)))
    below = np.zeros_like(alpha)
    below[drop:] = alpha[:-drop]
    shadow = cv2.GaussianBlur(below, (0, 0), 1.8 * px) * (1 - alpha) * _smoothstep(0.8, 1.1, canvas.fy)
    img *= (1 - rng.uniform(0.2, 0.45) * shadow)[..., None]

    thick = max(1, int(round(strap_width * px)))
    for path in strap_paths:
        _draw_strap(img, path - shift, thick, strap_rgb, strap_alpha, light)
    img += (mask_rgb - img) * alpha[..., None]
    _keep_eyes_clear(img, face[y0:y1, x0:x1], frame, mesh, (x0, y0))
    out = face.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


class _Frame:
    """Face frame: origin between the irises, x along the eye line in eye distances, y down in
    template-equivalent eye distances measured from eye line to mouth, so a turned head keeps its height.
    """

    def __init__(self, mesh: np.ndarray):
        left, right = mesh[_IRIS[0]], mesh[_IRIS[1]]
        sx = float(np.hypot(*(right - left)))
        ex = (right - left) / sx
        self.rot = np.array([ex, [-ex[1], ex[0]]], np.float32)  # rows: face x (image right), face y (down)
        self.origin = ((left + right) / 2).astype(np.float32)
        mouth = (mesh[_MOUTH[0]] + mesh[_MOUTH[1]]) / 2
        sy = float((mouth - self.origin) @ self.rot[1]) / _EYE_TO_MOUTH
        self.scale = np.array([sx, sy if sy > 0.3 * sx else sx], np.float32)
        self.px = float(self.scale[1]) / 35.0  # pixels per pixel of a 112-px crop (eye distance ~35 px there)

    def to_face(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.origin) @ self.rot.T / self.scale

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        return (pts * self.scale) @ self.rot + self.origin


def _resolve_mesh(mesh: np.ndarray | None, h: int, w: int) -> np.ndarray:
    """The given mesh, or the canonical one when it is missing, NaN (cache rows without a mesh) or degenerate."""
    if mesh is not None:
        mesh = np.asarray(mesh, np.float32)
        if mesh.ndim != 2 or mesh.shape[1] != 2 or len(mesh) < 478:
            raise ValueError(f"expected a (478, 2) face mesh, got shape {mesh.shape}")
        if np.isfinite(mesh).all() and np.ptp(mesh[_IRIS, 0]) > 1e-3 * w:
            return mesh
    return _canonical() * np.array([w / 112.0, h / 112.0], np.float32)


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates of an h×w image (shared: read-only)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


class _Shape(NamedTuple):
    """Mask outline in face-frame coordinates."""

    top: np.ndarray  # (N, 2) top edge, left to right, including the rounded top corners
    lower: np.ndarray  # (M, 2) sides and lower edge, left to right, between the ends of `top`
    ears: np.ndarray  # (2, 2) top corners (left, right), where the upper ear loops attach
    jaw: np.ndarray  # (2, 2) lower corners (left, right), where the lower ear loops attach
    chin: np.ndarray  # (2,) lowest point

    def polygon(self) -> np.ndarray:
        return np.concatenate([self.top, self.lower[::-1]])


def _outline(loc: np.ndarray, style: str, rng: np.random.Generator | None, scale: np.ndarray) -> _Shape:
    """The mask's outline for face-frame mesh `loc` (frame `scale`); rng None gives the nominal shape."""

    def u(lo: float, hi: float, n: int | None = None):
        if rng is None:
            return (lo + hi) / 2 if n is None else np.full(n, (lo + hi) / 2)
        return float(rng.uniform(lo, hi)) if n is None else rng.uniform(lo, hi, n)

    rigid = style == "n95"
    width = u(0.97, 1.05)
    # Top edge: side corners at cheekbone level just outside the contour, over the cheeks, peak on the bridge.
    ears, cheeks = loc[_EAR_SIDE], loc[_CHEEK_SIDE]
    corners = ears + u(0.2, 0.5, 2)[:, None] * (cheeks - ears)
    corners[:, 0] += (u(0.03, 0.08, 2) + 0.03 * rigid) * (-1, 1)
    peak = loc[_BRIDGE[0]] + u(0.6, 0.95) * (loc[_BRIDGE[1]] - loc[_BRIDGE[0]])
    inner = np.empty((0, 2), np.float32) if rigid else loc[_TOP_CHAIN]  # rigid: straight from bridge to corners
    half = len(inner) // 2
    ctrl = np.concatenate([corners[:1], inner[:half], peak[None], inner[half:], corners[1:]])
    ctrl[:, 1] += u(0.0, 0.08)
    if rng is not None:
        ctrl += rng.normal(0.0, 0.012, ctrl.shape)
    ctrl[:, 0] *= width
    ctrl = ctrl[np.argsort(ctrl[:, 0], kind="stable")]
    tx = np.linspace(ctrl[0, 0], ctrl[-1, 0], _TOP_SAMPLES)
    floor = _eye_floor(tx, scale)
    ty = np.maximum(np.interp(tx, ctrl[:, 0], ctrl[:, 1]), floor)
    pad = len(_SMOOTH) // 2
    ty = np.concatenate([np.full(pad, ty[0]), ty, np.full(pad, ty[-1])])
    ty = np.maximum(np.convolve(ty, _SMOOTH, mode="valid"), floor)  # fabric has no kinks
    top = np.stack([tx, ty], 1)

    # Lower outline: the face oval pushed out from the face centre, more under the chin, down to the chin.
    oval = loc[_OVAL_CHAIN]
    centre = loc[_NOSE_TIP]
    k_side, k_chin = u(0.03, 0.08), u(0.05, 0.12) + 0.05 * rigid
    depth = np.clip((oval[:, 1] - centre[1]) / (loc[_CHIN, 1] - centre[1]), 0, 1)[:, None]
    bottom = centre + (oval - centre) * (1 + k_side + (k_chin - k_side) * depth)
    n = len(_OVAL)
    if rigid:  # a cup that ends in a point under the chin: pull the jaw curve towards straight lines
        pull = u(0.3, 0.5)
        _straighten(bottom, 1, n, pull)
        _straighten(bottom, n, 2 * n - 1, pull)
    if rng is not None:
        bottom += rng.normal(0.0, 0.012, bottom.shape)
    bottom[:, 0] *= width
    bottom[:, 1] += u(-0.03, 0.05)
    lower = _cover_nose(np.concatenate([top[:1], bottom, top[-1:]]), loc, u(0.15, 0.3))
    # Round the top corners: fabric folds round the cheek there, it does not end in a point.
    left = _bezier(lower[_ROUND_LOWER], top[0], top[_ROUND_TOP])
    right = _bezier(top[-1 - _ROUND_TOP], top[-1], lower[-1 - _ROUND_LOWER])
    return _Shape(
        top=np.concatenate([left, top[_ROUND_TOP + 1 : -_ROUND_TOP - 1], right]),
        lower=lower[_ROUND_LOWER + 1 : -_ROUND_LOWER - 1],
        ears=np.stack([left[len(left) // 2], right[len(right) // 2]]),
        jaw=bottom[[2, -3]],
        chin=bottom[n],
    )


def _eye_floor(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Highest allowed top edge (face-frame y) at face-frame x: clear of the eyes, higher only on the bridge.

    Clearances are in pixels of the larger frame scale, so they hold on turned or tilted heads too.
    """
    sx, sy = float(scale[0]), float(scale[1])
    ref = max(sx, sy)
    inside = np.maximum(0.5 - np.abs(x), 0) * sx  # pixels from the nearer eye, towards the nose
    ramp = np.clip((inside - _EYE_CLEAR_X * ref) / (_BRIDGE_HALF_WIDTH * ref), 0, 1)
    return ref * (_FLOOR_EYES - (_FLOOR_EYES - _FLOOR_BRIDGE) * ramp) / sy


_BEZIER_T = np.linspace(0, 1, 7)[:, None]
_BEZIER_W = ((1 - _BEZIER_T) ** 2, 2 * _BEZIER_T * (1 - _BEZIER_T), _BEZIER_T**2)


def _bezier(a: np.ndarray, ctrl: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Points of the quadratic Bezier a -> b pulled towards ctrl, ends included."""
    return _BEZIER_W[0] * a + _BEZIER_W[1] * ctrl + _BEZIER_W[2] * b


def _straighten(pts: np.ndarray, i: int, j: int, pull: float) -> None:
    """Move pts[i+1:j] in place `pull` of the way onto the chord pts[i] -> pts[j] (evenly spaced)."""
    t = np.linspace(0, 1, j - i + 1)[1:-1, None]
    pts[i + 1 : j] += pull * (pts[i] + t * (pts[j] - pts[i]) - pts[i + 1 : j])


def _cover_nose(chain: np.ndarray, loc: np.ndarray, standoff: float) -> np.ndarray:
    """Resample corner-to-corner `chain` in polar steps round the mouth, widened where nose or mouth stick out.

    On a turned head the nose and lips project beyond the far cheek's contour; a real mask still
    covers them. Returns the chain without its two end points (the top corners).
    """
    c = (loc[_NOSE_TIP] + loc[_LIP]) / 2
    rel = chain - c
    theta = np.arctan2(rel[:, 1], rel[:, 0])
    step = (np.diff(theta) + np.pi) % (2 * np.pi) - np.pi  # unwrapped
    theta = theta[0] + np.concatenate([[0.0], np.cumsum(step)])
    radius = np.hypot(rel[:, 0], rel[:, 1])
    if not np.all(np.diff(theta) < 0):  # not star-shaped round the mouth (bizarre mesh): keep it as it is
        return chain[1:-1]
    samples = np.linspace(theta[0], theta[-1], _LOWER_SAMPLES + 2)[1:-1]
    r = np.interp(samples, theta[::-1], radius[::-1])
    feature = loc[_MUST_COVER] - c
    hull = cv2.convexHull(feature.astype(np.float32))[:, 0]
    if cv2.pointPolygonTest(hull, (0.0, 0.0), False) > 0:
        phi = np.arctan2(hull[:, 1], hull[:, 0])
        order = np.argsort(phi)
        reach = np.interp(samples, phi[order], np.hypot(*hull.T)[order], period=2 * np.pi) * (1 + standoff)
        r = np.maximum(r, reach)
    return np.stack([c[0] + r * np.cos(samples), c[1] + r * np.sin(samples)], 1)


class _Canvas:
    """Per-pixel maps of the window the mask is drawn in, in the face frame.

    fx, fy: face-frame coordinates; xn: -1..1 across the mask as on a cylinder; v: 0 at the top edge
    to 1 at the lower edge; vp: the same with smooth edges, for pleats.
    """

    def __init__(self, frame: _Frame, shape: _Shape, window: tuple[int, int, int, int], image_hw: tuple[int, int]):
        x0, y0, x1, y1 = window
        xs, ys = _grid(*image_hw)
        xs, ys = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
        o = frame.origin
        r = frame.rot / frame.scale[:, None]
        dx, dy = xs - o[0], ys - o[1]
        self.fx = dx * r[0, 0] + dy * r[0, 1]
        self.fy = dx * r[1, 0] + dy * r[1, 1]
        self.px = frame.px
        top, lower = shape.top, shape.lower
        self.centre_x = cx = float(top[np.argmin(top[:, 1]), 0])
        half_l, half_r = cx - lower[:, 0].min(), lower[:, 0].max() - cx
        self.xn = np.clip(np.where(self.fx < cx, (self.fx - cx) / half_l, (self.fx - cx) / half_r), -0.999, 0.999)
        t_edge = np.interp(self.fx, top[:, 0], top[:, 1]).astype(np.float32)
        under = lower[lower[:, 1] > shape.jaw[:, 1].min()]  # the part that is a function of x
        under = under[np.argsort(under[:, 0])]
        b_edge = np.interp(self.fx, under[:, 0], under[:, 1]).astype(np.float32)
        self.t_edge = t_edge
        self.v = np.clip((self.fy - t_edge) / np.maximum(b_edge - t_edge, 1e-3), 0, 1)
        # Pleats run between a parabola through the top edge (nose-wire peak left out) and one through
        # the lower corners and the chin, so they fan in towards the side hems like a worn mask's.
        cheek = np.array([cx, top[np.abs(top[:, 0] - cx) > 0.3, 1].min()])
        t_fit = _parabola(shape.ears[0], cheek, shape.ears[1], self.fx)
        b_fit = _parabola(shape.jaw[0], shape.chin, shape.jaw[1], self.fx)
        self.vp = ((self.fy - t_fit) / np.maximum(b_fit - t_fit, 0.2)).astype(np.float32)


def _parabola(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at x of the parabola through three points (the p0-p2 line if their x nearly coincide)."""
    (x0, y0), (x1, y1), (x2, y2) = (map(float, p) for p in (p0, p1, p2))
    d01, d02, d12 = x0 - x1, x0 - x2, x1 - x2
    if min(abs(d01), abs(d02), abs(d12)) < 1e-3:
        slope = (y2 - y0) / d02 if abs(d02) >= 1e-3 else 0.0
        return np.float32(slope) * (x - x0) + np.float32(y0)
    w0, w1, w2 = y0 / (d01 * d02), -y1 / (d01 * d12), y2 / (d02 * d12)
    a = w0 + w1 + w2
    b = -(w0 * (x1 + x2) + w1 * (x0 + x2) + w2 * (x0 + x1))
    c = w0 * x1 * x2 + w1 * x0 * x2 + w2 * x0 * x1
    return (np.float32(a) * x + np.float32(b)) * x + np.float32(c)


def _surface(
    style: str, rng: np.random.Generator, c: _Canvas, colour: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour per pixel or (3,), multiplicative shading, additive sheen) of one style's fabric."""
    h, w = c.fx.shape
    rigid = style == "n95"
    # Lambert shading of a surface wrapped round the cheeks, draped over the nose, tucked under the chin.
    light = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.45, -0.1), 1.0], np.float32)
    light /= np.linalg.norm(light)
    nx = np.sign(c.xn) * 0.25 + 0.55 * c.xn if rigid else c.xn.copy()
    d = (c.fx - c.centre_x) / 0.14
    nx += rng.uniform(0.4, 0.8) * d * np.exp(-d * d) * (1 - _smoothstep(0.45, 0.8, c.fy))
    ny = (c.v - 0.35) * rng.uniform(0.6, 1.0)
    nz = np.sqrt(np.clip(1 - c.xn * c.xn, 0.02, 1))
    facing = (nx * light[0] + ny * light[1] + nz * light[2]) / np.sqrt(nx * nx + ny * ny + nz * nz)
    facing = np.maximum(facing, 0)
    ambient = rng.uniform(0.3, 0.5)
    shade = ambient + (1 - ambient) * facing
    sheen = np.zeros((h, w), np.float32)
    grain_amp, grain_blur, wrinkles = 0.015, 0.0, 0.03

    if style in ("surgical_blue", "surgical_white"):
        shade *= _pleats(rng, c, 1.4 if style == "surgical_white" else 1.0)
    elif style == "black_cloth":
        grain_amp, grain_blur, wrinkles = rng.uniform(0.08, 0.14), 0.6, 0.06
        sheen += rng.uniform(20, 45) * facing ** rng.uniform(4, 8)
        if rng.random() < 0.6:
            shade *= _seam(c, 0.25)
    elif style == "patterned_cloth":
        grain_amp, grain_blur, wrinkles = rng.uniform(0.04, 0.08), 0.6, 0.05
        ink = _jitter_colour(rng, _INK, 8)
        # Print coordinates follow the cloth round the cheeks and bend with the top edge.
        s = np.arcsin(c.xn) * (1 + rng.uniform(-0.1, 0.1))
        q = c.fy - 0.5 * c.t_edge
        colour = colour + (ink - colour) * _print_pattern(rng, s, q, c.px)[..., None]
        if rng.random() < 0.5:
            shade *= _seam(c, 0.3)
    else:  # n95
        grain_amp, grain_blur = 0.02, 0.6
        # Central ridge and a heat-sealed rim just inside the outline.
        rim = _smoothstep(0.0, 0.05, c.v) * _smoothstep(0.0, 0.04, 1 - c.v)
        rim *= 1 - _smoothstep(0.9, 0.96, np.abs(c.xn))
        shade *= _seam(c, 0.18) * (0.9 + 0.1 * rim)

    grain = rng.standard_normal((h, w), dtype=np.float32)
    if grain_blur:
        grain = cv2.GaussianBlur(grain, (0, 0), grain_blur * c.px) * 1.6
    folds = cv2.resize(rng.standard_normal((5, 5), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    shade *= 1 + grain_amp * grain + wrinkles * folds
    return colour.astype(np.float32), shade.astype(np.float32), sheen


def _pleats(rng: np.random.Generator, c: _Canvas, strength: float) -> np.ndarray:
    """Shading of 2-4 horizontal pleats (fold line, shadow fading below, highlight above) and bonded hems."""
    n = int(rng.integers(2, 5))
    first, last = rng.uniform(0.15, 0.25), rng.uniform(0.65, 0.8)
    depth = rng.uniform(0.2, 0.32) * strength
    width = rng.uniform(0.07, 0.12)
    out = np.ones_like(c.v)
    for vk in np.linspace(first, last, n) + rng.normal(0, 0.015, n):
        t = (c.vp - vk) / width
        out -= depth * np.exp(-3 * np.maximum(t, 0)) * (t > 0) - 0.1 * np.exp(-((t / 0.3) ** 2))
    hem = rng.uniform(0.05, 0.08)
    out -= 0.08 * (np.exp(-(((c.v - hem) / 0.015) ** 2)) + np.exp(-(((c.v - 1 + hem) / 0.015) ** 2)))
    side = np.abs(c.xn)
    out -= 0.08 * _smoothstep(0.86, 0.9, side) * (1 - _smoothstep(0.9, 0.94, side))
    return out


def _seam(c: _Canvas, depth: float) -> np.ndarray:
    """A dark line with a faint highlight beside it down the middle of the mask (stitched seam or ridge)."""
    d = (c.fx - c.centre_x) * 35.0  # ~ pixels at 112 px
    return 1 - depth * np.exp(-((d / 0.7) ** 2)) + 0.06 * np.exp(-(((d - 1.5) / 1.0) ** 2))


def _print_pattern(rng: np.random.Generator, s: np.ndarray, q: np.ndarray, px: float) -> np.ndarray:
    """Ink coverage 0..1 of a random print: dots, stripes, gingham checks or blotches."""
    period = rng.uniform(0.13, 0.26)  # in eye distances: ~5-9 px at 112 px
    aa = 1 / (35 * px * period)  # one pixel in pattern units, for anti-aliasing
    a, b = s / period, q / period
    kind = rng.integers(4)
    if kind == 0:  # polka dots on staggered rows
        fa = (a + 0.5 * (np.floor(b) % 2)) % 1 - 0.5
        fb = b % 1 - 0.5
        r = rng.uniform(0.18, 0.3)
        return 1 - _smoothstep(r - aa, r + aa, np.sqrt(fa * fa + fb * fb))
    if kind == 1:  # stripes at one of a few angles
        ang = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4]) + rng.normal(0, 0.05)
        t = (a * np.cos(ang) + b * np.sin(ang)) % 1
        width = rng.uniform(0.3, 0.5)
        return _smoothstep(0, aa, t) * (1 - _smoothstep(width, width + aa, t))
    if kind == 2:  # gingham: two stripe sets, full ink where they cross
        width = rng.uniform(0.4, 0.55)
        return 0.5 * (2 - _smoothstep(width, width + aa, a % 1) - _smoothstep(width, width + aa, b % 1))
    h, w = s.shape  # blotches (camouflage / floral-ish): thresholded smooth noise
    blobs = cv2.resize(rng.standard_normal((6, 6), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    thr = rng.uniform(0.2, 0.6)
    return _smoothstep(thr - 0.1, thr + 0.1, blobs)


def _photo_softness(face: np.ndarray, px: float) -> float:
    """Blur (sigma in 112-px pixels) that makes a crisp drawing as soft as this photo, from its Laplacian."""
    h, w = face.shape[:2]
    grey = cv2.cvtColor(face[h // 4 : h // 2, w // 5 : w - w // 5], cv2.COLOR_RGB2GRAY)
    detail = float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean()) * px  # per 112-px pixel
    return float(np.clip(1.0 - 0.085 * (detail - 5.0), 0.4, 1.0))


def _scene_light(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency illumination of the photo times its exposure, so the mask is lit like the face."""
    h, w = face.shape[:2]
    coarse = cv2.resize(face, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).mean(axis=2)
    relative = np.clip(coarse / max(float(coarse[3:7, 2:6].mean()), 1.0), 0.7, 1.3) ** rng.uniform(0.3, 0.6)
    exposure = np.clip((float(coarse.max()) / 215) ** 0.6, 0.6, 1.0) * rng.uniform(0.92, 1.04)
    return cv2.resize(relative * exposure, (w, h), interpolation=cv2.INTER_LINEAR)


def _straps(
    style: str, rng: np.random.Generator, shape: _Shape, colour: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, float, float]:
    """Ear loops from the mask's corners to the root and the lobe of each visible ear.

    Returns the polylines in the face frame, RGB, width in 112-px pixels and opacity.
    """
    if style in ("surgical_blue", "surgical_white", "n95"):
        rgb = np.full(3, rng.uniform(215, 245), np.float32) if rng.random() < 0.7 else colour
    elif style == "black_cloth":
        rgb = np.full(3, rng.uniform(20, 45), np.float32)
    else:
        rgb = colour
    width = rng.uniform(0.8, 1.2) * (1.5 if style in ("black_cloth", "patterned_cloth") else 1.0)
    paths = []
    half = np.abs(shape.ears[:, 0])
    for side, sign in enumerate((-1, 1)):
        if half[side] < 0.75 * half[1 - side]:  # this side is turned away: its loops are behind the head
            continue
        ear, jaw = shape.ears[side], shape.jaw[side]
        root = ear + (sign * rng.uniform(0.06, 0.12), -rng.uniform(0.05, 0.15))
        lobe = (ear[0] + sign * rng.uniform(0.0, 0.06), ear[1] + rng.uniform(0.15, 0.3))
        paths += [np.stack([ear, root]), np.stack([jaw, lobe])]
    return [p.astype(np.float32) for p in paths], rgb.astype(np.float32), width, float(rng.uniform(0.6, 0.9))


def _draw_strap(img: np.ndarray, path: np.ndarray, thick: int, rgb: np.ndarray, opacity: float, light: np.ndarray):
    """Blend an anti-aliased polyline into `img` in place, touching only the block round it."""
    h, w = img.shape[:2]
    c0, r0 = np.maximum(np.floor(path.min(0)).astype(int) - thick - 1, 0)
    c1, r1 = np.minimum(np.ceil(path.max(0)).astype(int) + thick + 2, (w, h))
    if c0 >= c1 or r0 >= r1:
        return
    layer = np.zeros((r1 - r0, c1 - c0), np.uint8)
    cv2.polylines(layer, [_fixed(path - (c0, r0))], False, 255, thick, cv2.LINE_AA, shift=3)
    a = (layer.astype(np.float32) * np.float32(opacity / 255))[..., None]
    block = img[r0:r1, c0:c1]
    block += (rgb * light[r0:r1, c0:c1, None] - block) * a


def _keep_eyes_clear(img: np.ndarray, face: np.ndarray, frame: _Frame, mesh: np.ndarray, offset: tuple) -> None:
    """Restore `face` in place within a square of half-side _EYE_BOX round each iris (window coordinates).

    The outline rules already keep clear of the eyes; this guarantees it on extreme poses too.
    """
    half = _EYE_BOX * float(frame.scale.max())
    ramp = 2 * frame.px
    h, w = img.shape[:2]
    for ex, ey in mesh[_IRIS] - np.array(offset, np.float32):
        r0, r1 = max(0, int(ey - half - ramp)), min(h, int(np.ceil(ey + half + ramp)) + 1)
        c0, c1 = max(0, int(ex - half - ramp)), min(w, int(np.ceil(ex + half + ramp)) + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        keep = _smoothstep(half, half + ramp, np.maximum(np.abs(xs - ex), np.abs(ys - ey)))[..., None]
        base = face[r0:r1, c0:c1].astype(np.float32)
        img[r0:r1, c0:c1] = base + (img[r0:r1, c0:c1] - base) * keep


def _fixed(pts: np.ndarray) -> np.ndarray:
    """Points in cv2's 3-bit fixed point, for sub-pixel anti-aliased drawing."""
    return np.round(pts * 8).astype(np.int32)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown mask style {style!r}; expected one of {STYLES}")


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


# Colour anchors (RGB) per style; each draw adds jitter round one of them.
_BLUES = [(118, 172, 214), (96, 150, 200), (140, 192, 222), (92, 166, 196), (120, 160, 205)]
_WHITES = [(238, 238, 234), (232, 236, 238), (240, 236, 226), (226, 230, 228)]
_BLACKS = [(40, 40, 42), (50, 48, 50), (34, 36, 44), (58, 58, 60)]
_CLOTH = [(40, 55, 100), (150, 40, 50), (40, 90, 70), (200, 120, 140), (120, 120, 125), (200, 185, 150),
          (70, 45, 90), (30, 100, 140), (210, 200, 190), (90, 60, 45)]
_INK = [(240, 240, 235), (20, 20, 22), (230, 200, 60), (200, 60, 60), (60, 120, 200)]
_N95 = [(240, 238, 230), (236, 236, 236), (244, 242, 236), (232, 226, 212)]
_N95_OTHER = [(30, 30, 32), (150, 150, 155), (140, 185, 215)]


def _base_colour(style: str, rng: np.random.Generator) -> np.ndarray:
    if style == "surgical_blue":
        return _jitter_colour(rng, _BLUES, 6)
    if style == "surgical_white":
        return _jitter_colour(rng, _WHITES, 4)
    if style == "black_cloth":
        return _jitter_colour(rng, _BLACKS, 4)
    if style == "patterned_cloth":
        return _jitter_colour(rng, _CLOTH, 10)
    return _jitter_colour(rng, _N95 if rng.random() < 0.75 else _N95_OTHER, 5)


def _jitter_colour(rng: np.random.Generator, anchors: list[tuple[int, int, int]], spread: float) -> np.ndarray:
    base = np.array(anchors[rng.integers(len(anchors))], np.float32)
    return np.clip(base + rng.normal(0, spread, 3) + rng.normal(0, spread), 0, 255)
