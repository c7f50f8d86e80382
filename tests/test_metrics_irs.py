"""IRS: known answers, monotonicity, degenerate inputs and agreement with dlib (1e-6)."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import irs


def score(z, f):
  return irs.irs(z, f)['IRS']


def test_identity_near_one_constant_zero_random_lower():
  f = data.factors(3000, (3, 6, 10, 8, 12))
  assert score(data.identity_code(f, (3, 6, 10, 8, 12)), f) > 0.99
  assert score(np.ones((3000, 4)), f) == 0.0
  random = np.random.default_rng(0).standard_normal((3000, 5))
  assert score(random, f) < 0.6  # not 0 by definition: within-group spread < the max deviation


def test_falls_with_noise_and_rotation():
  f = data.factors(2000)
  by_noise = [score(data.identity_code(f, noise=s), f) for s in (0.01, 0.05, 0.2, 1.0)]
  assert data.strictly_decreasing(by_noise), by_noise
  z = data.identity_code(f, noise=0.01)
  by_angle = [score(data.rotate_pairs(z, a), f) for a in (0, 15, 30, 45)]
  assert data.strictly_decreasing(by_angle), by_angle


def test_degenerate_inputs():
  f = data.factors(500)
  z = data.identity_code(f, noise=0.1)
  z[:, 1] = 0.0
  out = irs.irs(z, f)
  assert out['num_active_dims'] == 4 and np.isfinite(out['IRS'])
  f[:, 0] = 1
  assert np.isfinite(irs.irs(z, f)['IRS'])
  z[5, 0] = np.inf
  with pytest.raises(ValueError):
    irs.irs(z, f)


def test_matches_dlib():
  ref = data.dlib('irs')
  utils = data.dlib('utils')
  f = data.factors(2000)
  for z in (data.identity_code(f, noise=0.05, extra_dims=2),
            data.rotate_pairs(data.identity_code(f, noise=0.2), 30)):
    out = irs.irs(z, f)
    expected = ref.scalable_disentanglement_score(utils.make_discretizer(f.T).T, z, 0.99)
    assert abs(out['IRS'] - expected['avg_score']) < 1e-6
    np.testing.assert_allclose(out['IRS_matrix'], expected['IRS_matrix'], atol=1e-6)
