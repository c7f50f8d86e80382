"""MIG: known answers, monotonicity, degenerate inputs and agreement with dlib (1e-6)."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import mig

SMALL = (3, 6, 10, 8, 12)  # at most 20 values: identity codes keep every value in its own bin


def score(codes, factors):
  return mig.mig(codes, factors)['discrete_mig']


def test_identity_near_one_constant_and_random_near_zero():
  f = data.factors(3000, SMALL)
  assert score(data.identity_code(f, SMALL), f) > 0.95
  assert score(np.zeros((3000, 5)), f) == 0.0
  random = np.random.default_rng(0).standard_normal((3000, 5))
  assert score(random, f) < 0.03


def test_duplicated_and_rotated_codes_score_lower_than_identity():
  f = data.factors(3000, SMALL)
  z = data.identity_code(f, SMALL, noise=0.02)
  identity = score(z, f)
  assert score(np.concatenate([z, z], axis=1), f) < 0.05 < identity
  assert score(data.rotate_pairs(z, 30), f) < identity - 0.1


def test_falls_with_noise_and_with_rotation():
  f = data.factors(2000)
  by_noise = [score(data.identity_code(f, noise=s), f) for s in (0.01, 0.05, 0.2, 1.0)]
  assert data.strictly_decreasing(by_noise), by_noise
  z = data.identity_code(f, noise=0.01)
  by_angle = [score(data.rotate_pairs(z, a), f) for a in (0, 15, 30, 45)]
  assert data.strictly_decreasing(by_angle), by_angle


def test_degenerate_inputs():
  f = data.factors(1000, SMALL)
  z = data.identity_code(f, SMALL, noise=0.05)
  f_const = f.copy()
  f_const[:, 0] = 4
  out = mig.mig(z, f_const)
  assert out['mig_per_factor'][0] == 0.0 and np.isfinite(out['discrete_mig'])
  np.testing.assert_allclose(out['discrete_mig'], out['mig_per_factor'][1:].mean())
  with pytest.raises(ValueError, match='constant'):
    mig.mig(z, np.zeros_like(f))
  z[0, 2] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    mig.mig(z, f)
  few = mig.mig(z[1:11], f[1:11])  # N below the number of bins: defined, finite
  assert np.isfinite(few['discrete_mig'])


def test_matches_dlib():
  ref = data.dlib('mig')
  f = data.factors(2000)
  for z in (data.identity_code(f, noise=0.05, extra_dims=3), data.identity_code(f)):
    expected = ref._compute_mig(z.T, f.T)['discrete_mig']
    assert abs(score(z, f) - expected) < 1e-6
