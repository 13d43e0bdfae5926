"""Synthetic masks: coverage of nose-to-chin, eyes untouched, determinism, sizes, real faces."""

import cv2
import numpy as np
import pytest

from facerec.faces.align import template
from facerec.faces.masks import STYLES, _misalignments, apply_mask, canonical_mesh, mask_polygon, misalign

NOSE_TIP, MOUTH_L, MOUTH_R, CHIN = 1, 61, 291, 152
IRISES = (468, 473)


def noise_face(size: int = 112, seed: int = 0) -> np.ndarray:
    """Per-pixel noise: any overlay changes almost every pixel it touches."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def mouth_chin_box(mesh: np.ndarray, size: int) -> tuple[slice, slice]:
    """Rows from the mouth corners down to the chin (or the crop's bottom), columns between the corners."""
    (xl, yl), (xr, yr) = mesh[MOUTH_L], mesh[MOUTH_R]
    top, bottom = int(np.ceil(max(yl, yr))), int(min(mesh[CHIN, 1], size))
    return slice(top, bottom), slice(int(np.ceil(xl)), int(xr) + 1)


def eye_boxes(eyes: np.ndarray, half: float) -> list[tuple[slice, slice]]:
    return [(slice(int(y - half), int(y + half) + 1), slice(int(x - half), int(x + half) + 1)) for x, y in eyes]


def polygon_area_mask(poly: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    cv2.fillPoly(out, [np.round(poly * 8).astype(np.int32)], 1, cv2.LINE_8, shift=3)
    return out.astype(bool)


def test_styles():
    assert STYLES == ("surgical_blue", "surgical_white", "black_cloth", "patterned_cloth", "n95")


def test_misalignment_table_holds_measured_similarity_transforms():
    rows = _misalignments()
    assert rows.ndim == 3 and rows.shape[1:] == (2, 3) and len(rows) >= 1000
    a, b, c, d = rows[:, 0, 0], rows[:, 0, 1], rows[:, 1, 0], rows[:, 1, 1]
    np.testing.assert_allclose(a, d, atol=2e-3)
    np.testing.assert_allclose(b, -c, atol=2e-3)
    zoom = np.hypot(a, c)
    assert zoom.min() > 0.8 and zoom.max() < 1.4
    assert np.median(zoom) > 1.02  # a masked photo is framed tighter: the mesh pulls the mouth up


@pytest.mark.parametrize("size", [112, 224])
def test_misalign_moves_the_face_by_one_measured_error(size):
    rows = _misalignments()
    face = np.zeros((size, size, 3), np.uint8)
    p = np.array([0.5, 0.4]) * size
    cv2.circle(face, tuple(int(v) for v in p), size // 40, (255, 255, 255), -1)
    for seed in range(5):
        out = misalign(face, np.random.default_rng(seed))
        assert out.shape == face.shape and out.dtype == np.uint8
        ys, xs = np.nonzero(out[..., 0] > 127)
        moved = np.array([xs.mean(), ys.mean()])
        expected = rows[:, :, :2] @ p + rows[:, :, 2] * (size / 112)  # translations scale with the crop
        assert np.linalg.norm(expected - moved, axis=1).min() < 0.02 * size


def test_canonical_mesh_is_an_aligned_face():
    mesh = canonical_mesh(112)
    assert mesh.shape == (478, 2) and mesh.dtype == np.float32
    tpl = template(112)
    # The mean mesh's irises and mouth corners sit on the ArcFace template it was aligned to.
    assert np.abs(mesh[list(IRISES)] - tpl[:2]).max() < 2.0
    assert np.abs(mesh[[MOUTH_L, MOUTH_R]] - tpl[3:]).max() < 2.0
    np.testing.assert_allclose(canonical_mesh(224), 2 * mesh, rtol=1e-6)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("jitter", [None, 0, 1, 2, 3])
def test_polygon_covers_nose_mouth_and_chin(style, jitter):
    rng = None if jitter is None else np.random.default_rng(jitter)
    poly = mask_polygon(None, 112, style, rng)
    assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 8
    mesh = canonical_mesh(112)
    tpl = template(112)
    for point in (*tpl[2:], mesh[NOSE_TIP], mesh[MOUTH_L], mesh[MOUTH_R], (mesh[CHIN, 0], 110.0)):
        assert cv2.pointPolygonTest(poly, tuple(map(float, point)), True) > 1.0, point
    rows, cols = mouth_chin_box(mesh, 112)
    assert polygon_area_mask(poly, 112)[rows, cols].mean() >= 0.9
    # Cheek to cheek: wider than the mouth by a good margin on both sides.
    assert poly[:, 0].min() < mesh[MOUTH_L, 0] - 15 and poly[:, 0].max() > mesh[MOUTH_R, 0] + 15
    # ... and the outline never rises into the eyes.
    for r, c in eye_boxes(tpl[:2], 8):
        assert not polygon_area_mask(poly, 112)[r, c].any()


@pytest.mark.parametrize("style", STYLES)
def test_every_style_masks_nose_to_chin_and_not_the_eyes(style):
    face = noise_face()
    mesh = canonical_mesh(112)
    rows, cols = mouth_chin_box(mesh, 112)
    for seed in range(12):
        out = apply_mask(face, None, style, seed)
        diff = changed(out, face)
        for x, y in (mesh[NOSE_TIP], mesh[MOUTH_L], mesh[MOUTH_R]):
            assert diff[int(round(y)), int(round(x))]
        assert diff[rows, cols].mean() >= 0.9
        assert diff[100:, 45:67].mean() >= 0.9  # chin
        for r, c in eye_boxes(template(112)[:2], 8):
            assert not diff[r, c].any(), (style, seed)


def test_random_style_and_seeds():
    face = noise_face()
    a = apply_mask(face, seed=7)
    np.testing.assert_array_equal(a, apply_mask(face, seed=7))
    np.testing.assert_array_equal(a, apply_mask(face, seed=np.random.default_rng(7)))
    outputs = [apply_mask(face, seed=s) for s in range(10)]
    assert len({o.tobytes() for o in outputs}) == 10
    for style in STYLES:
        assert not np.array_equal(apply_mask(face, style=style, seed=1), apply_mask(face, style=style, seed=2))
    # An unseeded call still works (fresh entropy).
    assert apply_mask(face).shape == face.shape


def test_generator_is_advanced_not_reset():
    face = noise_face()
    rng = np.random.default_rng(3)
    first, second = apply_mask(face, seed=rng), apply_mask(face, seed=rng)
    assert not np.array_equal(first, second)


def test_missing_mesh_uses_canonical():
    face = noise_face()
    for style in STYLES:
        expected = apply_mask(face, canonical_mesh(112), style, 5)
        np.testing.assert_array_equal(apply_mask(face, None, style, 5), expected)
        nan_mesh = np.full((478, 2), np.nan, np.float16)  # cache rows without a mesh
        np.testing.assert_array_equal(apply_mask(face, nan_mesh, style, 5), expected)


@pytest.mark.parametrize("size", [64, 160, 224])
def test_other_sizes(size):
    face = noise_face(size)
    mesh = canonical_mesh(size)
    rows, cols = mouth_chin_box(mesh, size)
    half = 8 * size / 112
    for i, style in enumerate(STYLES):
        out = apply_mask(face, None, style, i)
        assert out.shape == face.shape and out.dtype == np.uint8
        diff = changed(out, face)
        assert diff[rows, cols].mean() >= 0.9
        for r, c in eye_boxes(template(size)[:2], half):
            assert not diff[r, c].any()
        # The crop's own mesh at this size gives the same picture as the canonical fallback.
        np.testing.assert_array_equal(out, apply_mask(face, mesh, style, i))


def test_input_untouched_and_new_array():
    face = noise_face()
    before = face.copy()
    out = apply_mask(face, canonical_mesh(), "n95", 0)
    np.testing.assert_array_equal(face, before)
    assert out is not face and not np.shares_memory(out, face)
    assert out.dtype == np.uint8 and out.shape == face.shape


def test_turned_head_mesh_keeps_eyes_clear_and_covers_nose():
    """A squeezed, rolled mesh (head turned and tilted) still covers the nose and spares the eyes."""
    mesh = canonical_mesh(112).copy()
    centre = mesh[NOSE_TIP].copy()
    mesh[:, 0] = centre[0] + 0.7 * (mesh[:, 0] - centre[0])
    a = np.deg2rad(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    mesh = (mesh - centre) @ rot.T + centre
    face = noise_face()
    for i, style in enumerate(STYLES * 4):
        diff = changed(apply_mask(face, mesh, style, i), face)
        for x, y in (mesh[NOSE_TIP], mesh[MOUTH_L], mesh[MOUTH_R]):
            assert diff[int(round(y)), int(round(x))]
        for r, c in eye_boxes(mesh[list(IRISES)], 8):
            assert not diff[r, c].any()


def test_fast_enough_for_the_input_pipeline():
    """~2 ms per 112-px face; the bound is loose because the test machine is shared."""
    import time

    faces = [noise_face(seed=i) for i in range(5)]
    apply_mask(faces[0], seed=0)  # warm caches
    start = time.perf_counter()
    for i in range(50):
        apply_mask(faces[i % 5], seed=i)
    assert (time.perf_counter() - start) / 50 < 0.02


def test_bad_arguments():
    face = noise_face()
    with pytest.raises(ValueError, match="style"):
        apply_mask(face, style="bandana")
    with pytest.raises(ValueError, match="style"):
        mask_polygon(None, style="bandana")
    with pytest.raises(ValueError):
        apply_mask(face.astype(np.float32))
    with pytest.raises(ValueError):
        apply_mask(face[..., 0])


def test_real_lfw_faces(data_dir, detector):
    """On real aligned LFW faces with their own meshes: nose and mouth masked, irises untouched."""
    from facerec.faces.align import aligned_faces
    from facerec.images import load_image

    root = data_dir / "lfw" / "lfw-deepfunneled"
    paths = sorted(root.glob("*/*_0001.jpg"))[::400][:6]
    assert paths, f"no LFW images under {root}"
    faces = [aligned_faces(img, detector.detect(img)[:1], 112) for img in map(load_image, paths)]
    faces = [f[0] for f in faces if f and f[0].mesh is not None]
    assert len(faces) >= 4
    for i, af in enumerate(faces):
        for style in STYLES:
            diff = changed(apply_mask(af.crop, af.mesh, style, i), af.crop)
            for x, y in af.mesh[[NOSE_TIP, MOUTH_L, MOUTH_R]]:
                assert diff[int(round(y)), int(round(x))], (af.face, style)
            for r, c in eye_boxes(af.mesh[list(IRISES)], 8):
                assert not diff[r, c].any(), style
