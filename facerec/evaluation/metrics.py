"""Verification metrics on similarity scores (higher = more likely the same person).

Kept free of TensorFlow so evaluation, calibration and training validation
share one implementation.
"""

from __future__ import annotations

import numpy as np


def roc(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true accept rates at every distinct threshold (accept when score >= threshold).

    Returns (far, tar, thresholds), far ascending, starting at (0, 0, +inf).
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    last = np.r_[np.diff(s) != 0, True]  # last index of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos], np.r_[np.inf, s[last]]


def auc(scores: np.ndarray, same: np.ndarray) -> float:
    far, tar, _ = roc(scores, same)
    return float(np.trapz(tar, far))


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where the false accept rate meets the false reject rate (linear interpolation)."""
    far, tar, _ = roc(scores, same)
    frr = 1.0 - tar
    i = int(np.argmax(far >= frr))
    if i == 0:
        return float(far[0])
    # Interpolate between points i-1 and i, where far - frr changes sign.
    d0, d1 = far[i - 1] - frr[i - 1], far[i] - frr[i]
    t = d0 / (d0 - d1) if d1 != d0 else 0.0
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def tar_at_far(scores: np.ndarray, same: np.ndarray, target: float) -> float:
    """Best true accept rate whose false accept rate does not exceed `target`."""
    far, tar, _ = roc(scores, same)
    return float(tar[far <= target].max())


def threshold_at_far(scores: np.ndarray, same: np.ndarray, target: float) -> float:
    """Lowest threshold whose false accept rate does not exceed `target`."""
    far, _, thr = roc(scores, same)
    ok = np.where(far <= target)[0]
    return float(thr[ok[-1]])


def open_set_threshold(stranger_scores: np.ndarray, far: float) -> float:
    """The lowest threshold accepting at most `far` of strangers (their best gallery scores): just
    above the (k+1)-th best, k = the strangers `far` allows, at 4 decimals, as scores are printed
    and compared (accept when score >= threshold). Fewer than 1/far strangers: above the best one."""
    s = np.sort(np.asarray(stranger_scores, np.float64))[::-1]
    k = int(np.floor(far * len(s)))
    return round(float(s[min(k, len(s) - 1)]) + 1e-4, 4)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy; the threshold sits midway between neighbouring scores."""
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    s = np.unique(scores)
    cands = np.r_[s[0] - 1e-6, (s[:-1] + s[1:]) / 2, s[-1] + 1e-6]
    # Correct decisions at threshold t: positives with score >= t plus negatives with score < t.
    pos, neg = np.sort(scores[same]), np.sort(scores[~same])
    correct = (len(pos) - np.searchsorted(pos, cands, "left")) + np.searchsorted(neg, cands, "left")
    i = int(np.argmax(correct))
    return float(cands[i]), float(correct[i] / len(scores))


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float]]:
    """LFW protocol: for each fold, pick the threshold on the other folds and score this one.

    Returns (mean, std, per-fold thresholds).
    """
    scores, same, folds = np.asarray(scores), np.asarray(same, bool), np.asarray(folds)
    accs, thresholds = [], []
    for k in np.unique(folds):
        test = folds == k
        t, _ = best_threshold(scores[~test], same[~test])
        accs.append(accuracy(scores[test], same[test], t))
        thresholds.append(t)
    return float(np.mean(accs)), float(np.std(accs)), thresholds
