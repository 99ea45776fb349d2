"""The social gates' summary: AUC by hand, the fake mark per model tie, quantiles and histogram."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrec.social_gates import fake_per_tie, gate_summary, roc_auc


def test_auc_is_the_share_of_real_fake_pairs_ordered_right_ties_half():
    assert roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert roc_auc(np.array([0.1]), np.array([0.9])) == 0.0
    # pairs: (0.5 vs 0.5) half, (0.5 vs 0.2) 1, (0.9 vs 0.5) 1, (0.9 vs 0.2) 1 -> 3.5 / 4
    assert roc_auc(np.array([0.5, 0.9]), np.array([0.5, 0.2])) == pytest.approx(3.5 / 4)
    assert roc_auc(np.array([0.5]), np.array([])) is None


def test_a_model_tie_is_fake_when_its_kept_tie_is_marked_in_either_direction():
    kept_src, kept_dst, kept_fake = np.array([0, 2, 3]), np.array([1, 1, 4]), np.array([0, 1, 0], np.int8)
    tie_src = np.array([0, 1, 1, 2, 3, 4])        # the model's ties: both directions of every kept tie
    tie_dst = np.array([1, 0, 2, 1, 4, 3])
    fake = fake_per_tie(tie_src, tie_dst, 5, kept_src, kept_dst, kept_fake)
    assert fake.tolist() == [False, False, True, True, False, False]


def test_gate_summary_quantiles_histogram_and_means():
    gates = np.array([0.05, 0.15, 0.95, 0.85, 0.9])
    fake = np.array([True, True, False, False, False])
    s = gate_summary(gates, fake)
    assert s["ties"] == 5 and s["mean"] == pytest.approx(gates.mean())
    assert s["histogram"]["counts"] == [1, 1, 0, 0, 0, 0, 0, 0, 1, 2] and len(s["histogram"]["edges"]) == 11
    assert s["mean_fake"] == pytest.approx(0.1) and s["mean_real"] == pytest.approx(0.9) and s["auc"] == 1.0
    assert s["quantiles"]["p50"] == pytest.approx(0.85)
    assert "auc" not in gate_summary(gates, None)
