"""Triplet loss with semi-hard negative mining (FaceNet, arXiv:1503.03832) for Keras 3.

tensorflow-addons had this loss but is end-of-life and does not import under
Keras 3, so this re-implements `tfa.losses.TripletSemiHardLoss` (default
distance_metric="L2") with `keras.ops`, so it runs on any Keras backend:

- d = Euclidean (not squared) distance between L2-normalised embeddings;
- for every anchor-positive pair (a, p), the negative is the nearest one with
  d(a,n) > d(a,p), else the farthest negative; an anchor with no negative at all
  gets d(a,n) = 0, as in tfa;
- loss = mean over positive pairs of max(margin + d(a,p) - d(a,n), 0).

Deviations, both only where tfa misbehaves: embeddings are L2-normalised here
(tfa requires the caller to do it; the facerec model already does, so this is a
no-op there), and a batch with no positive pair gives 0 instead of tfa's NaN.
"""

from __future__ import annotations

from facerec import _quiet  # noqa: F401  (before TensorFlow)
import keras
from keras import ops


def pairwise_distances(x):
    """Euclidean distances between rows of `x` [N,D] -> [N,N], zero diagonal, finite gradients."""
    sq = ops.sum(ops.square(x), axis=1)
    d2 = ops.maximum(sq[:, None] + sq[None, :] - 2.0 * ops.matmul(x, ops.transpose(x)), 0.0)
    zero = ops.logical_or(d2 <= 0.0, ops.eye(ops.shape(x)[0], dtype="bool"))
    # sqrt of a safe value then mask: sqrt'(0) is infinite and would turn gradients into NaN.
    return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, d2)))


def triplet_semihard_loss(labels, embeddings, margin: float = 1.0):
    """The semi-hard triplet loss of a batch: labels [N] (or [N,1]) and embeddings [N,D] -> scalar."""
    labels = ops.reshape(labels, (-1,))
    x = ops.normalize(ops.cast(embeddings, "float32"), axis=-1, order=2, epsilon=1e-12)
    d = pairwise_distances(x)
    same = ops.equal(labels[:, None], labels[None, :])
    positive = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool")))
    negative = ops.logical_not(same)

    # [anchor, positive, negative] cube: negatives farther from the anchor than the positive.
    d_an = d[:, None, :]
    outside = ops.logical_and(negative[:, None, :], d_an > d[:, :, None])
    nearest_outside = ops.min(ops.where(outside, d_an, ops.max(d)), axis=2)
    farthest = ops.max(ops.where(negative, d, 0.0), axis=1, keepdims=True)  # 0 when no negative
    semi_hard = ops.where(ops.any(outside, axis=2), nearest_outside, farthest)

    hinge = ops.maximum(margin + d - semi_hard, 0.0)
    positive = ops.cast(positive, "float32")
    return ops.sum(hinge * positive) / ops.maximum(ops.sum(positive), 1.0)


@keras.saving.register_keras_serializable(package="facerec")
class TripletSemiHardLoss(keras.losses.Loss):
    """Keras loss: y_true = integer identity labels [N], y_pred = embeddings [N,D]."""

    def __init__(self, margin: float = 1.0, name: str = "triplet_semihard_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return triplet_semihard_loss(y_true, y_pred, self.margin)

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin}
