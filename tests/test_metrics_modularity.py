"""Modularity and explicitness: known answers, monotonicity, degenerate inputs, dlib agreement."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import modularity

SMALL = (3, 6, 10, 8, 12)


def mod(z, f):
  return modularity.modularity(z, f)['modularity_score']


def test_modularity_known_answers():
  f = data.factors(3000, SMALL)
  assert mod(data.identity_code(f, SMALL), f) > 0.97
  assert mod(np.zeros((3000, 5)), f) == 0.0
  z = data.identity_code(f, SMALL, noise=0.02)
  assert mod(data.rotate_pairs(z, 45), f) < mod(z, f) - 0.05
  # A code that mixes two factors equally: delta = 1/2 for K - 1 = 2 other factors.
  g = data.factors(3000, (4, 4, 4))
  assert abs(mod((g[:, 0] + g[:, 1])[:, None].astype(float), g) - 0.5) < 0.05


def test_modularity_falls_with_rotation_and_noise():
  f = data.factors(2000)
  z = data.identity_code(f, noise=0.01)
  by_angle = [mod(data.rotate_pairs(z, a), f) for a in (0, 15, 30, 45)]
  assert data.strictly_decreasing(by_angle), by_angle
  by_noise = [mod(data.identity_code(f, noise=s), f) for s in (0.01, 0.1, 0.3, 3.0)]
  assert data.strictly_decreasing(by_noise), by_noise


def test_explicitness_known_answers_and_noise():
  xtr, ftr, xte, fte = data.train_test(2000, 1000, noise=0.0)
  # A linear probe cannot carve 40 intervals out of one dimension perfectly: high, not 1.
  assert modularity.explicitness(xtr, ftr, xte, fte)['explicitness_score_test'] > 0.95
  rng = np.random.default_rng(0)
  random = modularity.explicitness(rng.standard_normal((2000, 5)), ftr,
                                   rng.standard_normal((1000, 5)), fte)
  assert abs(random['explicitness_score_test'] - 0.5) < 0.03  # chance-level AUC
  scores = []
  for s in (0.02, 0.1, 0.3, 1.0):
    xtr, ftr, xte, fte = data.train_test(2000, 1000, noise=s)
    scores.append(modularity.explicitness(xtr, ftr, xte, fte)['explicitness_score_test'])
  assert data.strictly_decreasing(scores), scores


def test_degenerate_inputs():
  xtr, ftr, xte, fte = data.train_test(1000, 500, noise=0.1)
  xtr[:, 4] = 1.0  # constant code dimension: standardised to 0, no NaN
  ftr[:, 0] = 2  # constant factor: left out of the mean
  out = modularity.modularity_explicitness(xtr, ftr, xte, fte)
  assert all(np.isfinite(out[k]) for k in ('modularity_score', 'explicitness_score_test'))
  assert out['modularity_per_code'][4] == 0.0
  np.testing.assert_allclose(out['explicitness_score_train'],
                             out['explicitness_per_factor_train'][1:].mean())
  with pytest.raises(ValueError):
    modularity.explicitness(xtr, np.zeros_like(ftr), xte, fte)


def test_matches_dlib():
  ref = data.dlib('modularity')
  utils = data.dlib('utils')
  xtr, ftr, xte, fte = data.train_test(2000, 1000, noise=0.1, extra_dims=2)
  mi = utils.discrete_mutual_info(utils.make_discretizer(xtr.T), ftr.T)
  assert abs(mod(xtr, ftr) - ref.modularity(mi)) < 1e-6
  ours = modularity.explicitness(xtr, ftr, xte, fte)
  mtr, mean, std = utils.normalize_data(xtr.T)
  mte, _, _ = utils.normalize_data(xte.T, mean, std)
  for k in range(ftr.shape[1]):
    tr, te = ref.explicitness_per_factor(mtr, ftr[:, k], mte, fte[:, k])
    assert abs(ours['explicitness_per_factor_train'][k] - tr) < 0.02
    assert abs(ours['explicitness_per_factor_test'][k] - te) < 0.02
