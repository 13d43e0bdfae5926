"""TripletSemiHardLoss against tfa's documented value and a brute-force NumPy reference."""

import math

import numpy as np
import pytest

from facerec.nets.losses import TripletSemiHardLoss, triplet_semihard_loss

import keras  # noqa: E402  (after facerec, which silences TensorFlow)
import tensorflow as tf  # noqa: E402


def reference_loss(labels, embeddings, margin=1.0):
    """Written from the definition with plain loops, in float64."""
    e = np.asarray(embeddings, np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    n = len(labels)

    def dist(i, j):
        return 0.0 if i == j else math.sqrt(sum((e[i, k] - e[j, k]) ** 2 for k in range(e.shape[1])))

    terms = []
    for a in range(n):
        negatives = [dist(a, j) for j in range(n) if labels[j] != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            d_ap = dist(a, p)
            farther = [d for d in negatives if d > d_ap]
            if farther:
                d_an = min(farther)
            elif negatives:
                d_an = max(negatives)
            else:
                d_an = 0.0  # tfa: no negative at all in the batch for this anchor
            terms.append(max(margin + d_ap - d_an, 0.0))
    return sum(terms) / len(terms) if terms else 0.0


def test_tfa_documented_value():
    # tfa docs: triplet_semihard_loss([0, 0], [[0, 1], [1, 0]], distance_metric="L2") == 2.4142137 (= 1 + sqrt 2),
    # which pins the metric to plain (not squared) Euclidean distance.
    y_true, y_pred = np.array([0, 0]), np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    assert float(TripletSemiHardLoss()(y_true, y_pred)) == pytest.approx(2.4142137, abs=1e-6)
    assert reference_loss(y_true, y_pred) == pytest.approx(1 + math.sqrt(2), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    n, dim, classes = rng.integers(6, 33), rng.integers(2, 17), rng.integers(2, 7)
    labels = rng.integers(0, classes, n)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    margin = [1.0, 0.2, 0.5][seed % 3]
    got = float(TripletSemiHardLoss(margin)(labels, embeddings))
    assert got == pytest.approx(reference_loss(labels, embeddings, margin), abs=1e-5)


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 1, 2, 3, 4],  # most anchors have no positive
        [7, 7, 7, 7],  # no negative anywhere
        [0, 1, 2, 3],  # no positive pair at all: 0, not tfa's NaN
        [0, 0, 1, 1, 1, 2],
    ],
)
def test_degenerate_batches_are_finite_with_finite_gradients(labels):
    rng = np.random.default_rng(1)
    e = rng.normal(size=(len(labels), 5)).astype(np.float32)
    e[1] = e[0]  # a duplicate embedding: zero distance, where sqrt has no gradient
    x = tf.Variable(e)
    with tf.GradientTape() as tape:
        loss = TripletSemiHardLoss(2.0)(np.array(labels), x)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(float(loss)) and np.all(np.isfinite(grad))
    assert float(loss) == pytest.approx(reference_loss(labels, e, 2.0), abs=1e-5)
    if len(set(labels)) == len(labels):
        assert float(loss) == 0.0


def test_label_shape_and_scale_invariance():
    rng = np.random.default_rng(3)
    labels, e = rng.integers(0, 3, 12), rng.normal(size=(12, 4)).astype(np.float32)
    a = float(triplet_semihard_loss(labels, e))
    assert float(triplet_semihard_loss(labels[:, None], e)) == pytest.approx(a, abs=1e-6)
    assert float(triplet_semihard_loss(labels, 5 * e)) == pytest.approx(a, abs=1e-5)  # normalised inside


def test_trains_and_serialises_in_keras():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.UnitNormalization()])
    model.compile(optimizer="adam", loss=TripletSemiHardLoss(0.5))
    x, y = np.random.default_rng(0).random((64, 8), np.float32), np.arange(64) % 4
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0).history["loss"]
    assert all(np.isfinite(history))
    again = keras.losses.deserialize(keras.losses.serialize(TripletSemiHardLoss(0.3)))
    assert isinstance(again, TripletSemiHardLoss) and again.margin == 0.3
