import numpy as np
import pytest

from facerec.evaluation.metrics import accuracy, auc, best_threshold, eer, kfold_accuracy, roc, tar_at_far, threshold_at_far


def test_roc_by_hand():
    # scores 0.9(+) 0.8(-) 0.7(+) 0.6(-): thresholds step through each score
    far, tar, thr = roc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])
    np.testing.assert_allclose(far, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr[1:], [0.9, 0.8, 0.7, 0.6])
    assert auc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.75)


def test_ties_are_one_threshold():
    far, tar, _ = roc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])
    np.testing.assert_allclose(far, [0, 1]) and np.testing.assert_allclose(tar, [0, 1])
    assert auc([0.5] * 4, [1, 0, 1, 0]) == pytest.approx(0.5)


def test_perfect_and_inverted():
    s, y = [0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]
    assert auc(s, y) == 1.0 and eer(s, y) == 0.0 and tar_at_far(s, y, 0.0) == 1.0
    assert auc(s, [0, 0, 1, 1]) == 0.0


def test_eer_and_tar_by_hand():
    # 4 positives 0.9 0.8 0.7 0.3 ; 4 negatives 0.6 0.5 0.4 0.2
    s = [0.9, 0.8, 0.7, 0.3, 0.6, 0.5, 0.4, 0.2]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    # At threshold 0.7: FAR 0, FRR 0.25; at 0.6: FAR 0.25, FRR 0.25 -> EER 0.25
    assert eer(s, y) == pytest.approx(0.25)
    assert tar_at_far(s, y, 0.0) == pytest.approx(0.75)
    assert tar_at_far(s, y, 0.25) == pytest.approx(0.75)
    assert tar_at_far(s, y, 0.75) == pytest.approx(1.0)
    assert threshold_at_far(s, y, 0.0) == pytest.approx(0.7)
    t, acc = best_threshold(s, y)
    assert acc == pytest.approx(7 / 8) and 0.6 < t <= 0.7
    assert accuracy(s, y, t) == acc


def test_kfold_picks_threshold_on_other_folds():
    # Fold 0 alone would prefer a threshold of ~0.5; folds 1-2 push it to ~0.35.
    s = np.array([0.45, 0.55, 0.3, 0.4, 0.3, 0.4, 0.2, 0.9])
    y = np.array([1, 0, 0, 1, 0, 1, 0, 1])
    f = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    mean, std, thresholds = kfold_accuracy(s, y, f)
    # fold 0 scored with the threshold chosen on folds 1-2 (0.35): 0.45 accepted (right), 0.55 accepted (wrong)
    assert 0.3 < thresholds[0] <= 0.4
    folds_acc = [0.5, 1.0, 1.0]
    assert mean == pytest.approx(np.mean(folds_acc)) and std == pytest.approx(np.std(folds_acc))
