"""dlib's unified scores and strong downstream task: known answers and special cases."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax import metrics
from disentangle_jax.metrics import dci, mig, modularity, sap, strong_downstream, unified
from test_metrics_sampling import GT, decode_factors, identity_encoder


def test_independent_groups_and_the_precision_curve():
  m = np.array([[0.9, 0.0, 0.0], [0.0, 0.8, 0.2], [0.0, 0.1, 0.7], [0.0, 0.0, 0.0]])
  assert unified.independent_groups(m, 0.5) == 3  # three one-to-one pairs
  assert unified.independent_groups(m, 0.15) == 2  # 0.2 joins factors 1 and 2 through code 1
  assert unified.independent_groups(m, 0.05) == 2
  assert unified.independent_groups(m, 0.95) == 0
  out = unified.precision_curve_values(m)
  # Thresholds 0.9, 0.8, 0.7, 0.2, 0.1, 0 ...: groups 1, 2, 3, 2, 2, 2 (zeros are no edges).
  expected = (1 + 2) / 2 * 0.1 + (2 + 3) / 2 * 0.1 + (3 + 2) / 2 * 0.5 + 2 * 0.1 + 2 * 0.1
  assert out['area_precision'] == pytest.approx(expected)
  assert out['max_precision'] == 3.0


def test_the_four_original_scores_are_special_cases():
  xtr, ftr, xte, fte = data.train_test(600, 300, sizes=(4, 5, 6), noise=0.1)
  u = metrics.get_metric('unified').fn(xtr, ftr, xte, fte)
  assert u['mutual_information_matrix.mig'] == pytest.approx(mig.mig(xtr, ftr)['discrete_mig'])
  assert u['mutual_information_matrix.modularity'] == pytest.approx(
    modularity.modularity(xtr, ftr)['modularity_score'])
  assert u['accuracy_svm_matrix.sap'] == pytest.approx(sap.sap(xtr, ftr, xte, fte)['SAP_score'])
  d = dci.dci(xtr, ftr, xte, fte)
  assert u['importance_gbt_matrix.dci_disentanglement'] == pytest.approx(d['disentanglement'])
  assert u['importance_gbt_matrix.dci_completeness'] == pytest.approx(d['completeness'])
  assert u['importance_gbt_matrix'].shape == (3, 3)
  with pytest.raises(ValueError, match='unknown matrices'):
    unified.unified_scores(xtr, ftr, xte, fte, matrices=('lasso',))


def _mixing_encoder(images):
  """Factor a read only through a dimension that also carries b strongly: a + 10 b, and b."""
  f = decode_factors(images).astype(np.float64)
  return np.stack([f[:, 0] + 10.0 * f[:, 1], f[:, 1], f[:, 2]], 1)


def test_strong_downstream_known_answers():
  kw = dict(train_sizes=(300,), num_test=300, num_experiments=2)
  ident = strong_downstream.strong_downstream_task(GT, identity_encoder, np.random.default_rng(0),
                                                   **kw)
  assert ident['300:mean_test_accuracy'] == pytest.approx(1.0)
  assert ident['300:mean_strong_test_accuracy'] == pytest.approx(1.0)
  assert ident['300:strong_generalization_gap'] == pytest.approx(0.0, abs=1e-9)
  # Trained with b fixed, a classifier of a thresholds a + 10 b at that b: it fails when b moves.
  mixed = strong_downstream.strong_downstream_task(GT, _mixing_encoder, np.random.default_rng(0),
                                                   **kw)
  assert mixed['300:mean_test_accuracy'] > 0.95
  assert mixed['strong_test_accuracy'][0, 0] < 0.8
  assert mixed['300:strong_generalization_gap'] > 0.05
  with pytest.raises(ValueError, match='two factors'):
    class One:
      factor_sizes = (3,)
    strong_downstream.strong_downstream_task(One(), identity_encoder, np.random.default_rng(0))


def test_strong_downstream_runs_through_evaluate():
  out = metrics.evaluate(['strong_downstream'], ground_truth=GT, encode_fn=identity_encoder,
                         rng_seed=0, settings={'strong_downstream': dict(
                           train_sizes=(100,), num_test=100, num_experiments=1)})
  assert out['strong_downstream']['100:mean_strong_test_accuracy'] == pytest.approx(1.0)
