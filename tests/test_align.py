import numpy as np

from facerec.faces.align import ARCFACE_TEMPLATE, align_face, similarity_matrix, template, transform_points


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2)).astype(np.float32)
    a, s = 0.3, 1.7
    M = np.array([[s * np.cos(a), -s * np.sin(a), 12.0], [s * np.sin(a), s * np.cos(a), -5.0]], np.float32)
    dst = transform_points(src, M)
    np.testing.assert_allclose(similarity_matrix(src, dst), M, atol=1e-4)


def test_no_reflection():
    src = ARCFACE_TEMPLATE.copy()
    dst = src.copy()
    dst[:, 0] = 112 - dst[:, 0]  # mirrored: best similarity must still be a rotation
    M = similarity_matrix(src, dst)
    assert np.linalg.det(M[:, :2]) > 0


def test_align_puts_keypoints_on_template():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    a, s = -0.4, 2.2
    M = np.array([[s * np.cos(a), -s * np.sin(a), 150.0], [s * np.sin(a), s * np.cos(a), 40.0]], np.float32)
    kp = transform_points(ARCFACE_TEMPLATE, M)
    for size in (112, 160):
        crop, A = align_face(image, kp, size)
        assert crop.shape == (size, size, 3)
        np.testing.assert_allclose(transform_points(kp, A), template(size), atol=1e-3)
