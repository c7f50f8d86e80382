"""SAP (discrete: 1-D linear SVMs; continuous: squared correlation)."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import sap

BINARY = (2, 2, 2, 2)


def test_known_answers():
  xtr, ftr, xte, fte = data.train_test(2000, 1000, BINARY, noise=0.0)
  # Own code: accuracy 1; other codes: balanced classes, chance 0.5 -> gap 0.5.
  assert abs(sap.sap(xtr, ftr, xte, fte)['SAP_score'] - 0.5) < 0.05
  assert sap.sap(xtr, ftr, continuous_factors=True)['SAP_score'] > 0.99
  const = np.zeros_like(xtr)
  assert sap.sap(const, ftr, np.zeros_like(xte), fte)['SAP_score'] == 0.0
  rng = np.random.default_rng(0)
  assert sap.sap(rng.standard_normal(xtr.shape), ftr, continuous_factors=True)['SAP_score'] < 0.01


def test_falls_with_noise_and_rotation():
  by_noise = []
  for s in (0.02, 0.2, 0.5, 2.0):
    xtr, ftr, xte, fte = data.train_test(2000, 1000, (3, 4, 5, 3), noise=s)
    by_noise.append(sap.sap(xtr, ftr, xte, fte)['SAP_score'])
  assert data.strictly_decreasing(by_noise), by_noise
  f = data.factors(2000)
  z = data.identity_code(f, noise=0.01)
  by_angle = [sap.sap(data.rotate_pairs(z, a), f, continuous_factors=True)['SAP_score']
              for a in (0, 15, 30, 45)]
  assert data.strictly_decreasing(by_angle), by_angle


def test_degenerate_inputs():
  xtr, ftr, xte, fte = data.train_test(500, 300, (3, 4), noise=0.1)
  ftr[:, 0] = 7
  out = sap.sap(xtr, ftr, xte, fte)
  assert out['sap_per_factor'][0] == 0.0 and np.isfinite(out['SAP_score'])
  assert np.isfinite(sap.sap(xtr, ftr, continuous_factors=True)['SAP_score'])
  with pytest.raises(ValueError):
    sap.sap(xtr, ftr)  # discrete SAP needs a test set


def test_matches_dlib():
  ref = data.dlib('sap')
  xtr, ftr, xte, fte = data.train_test(2000, 1000, (3, 6, 10, 8, 2), noise=0.1)
  for continuous in (False, True):
    ours = sap.sap(xtr, ftr, xte, fte, continuous_factors=continuous)
    matrix = ref.compute_score_matrix(xtr.T, ftr.T, xte.T, fte.T, continuous)
    assert abs(ours['SAP_score'] - ref.compute_avg_diff_top_two(matrix)) < 1e-6
    # liblinear stops at its tolerance: a test point within ~1e-5 of a boundary may flip.
    np.testing.assert_allclose(ours['score_matrix'], matrix, atol=2e-3 if not continuous else 1e-9)
