"""Gaussian total correlation, Wasserstein dependency and mean pairwise MI."""

import jax.numpy as jnp
import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import unsupervised


def test_two_dimensional_gaussian_closed_form():
  for rho in (0.0, 0.3, 0.9):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    out = unsupervised.gaussian_scores(jnp.asarray(cov))
    np.testing.assert_allclose(float(out['gaussian_total_correlation']),
                               -0.5 * np.log(1 - rho**2), atol=1e-6)
    wass = 4 - 2 * (np.sqrt(1 + rho) + np.sqrt(1 - rho))
    np.testing.assert_allclose(float(out['gaussian_wasserstein_correlation']), wass, atol=1e-6)


def _rotate_unequal(z, degrees):
  """Rotates the pairs (0, 1), (2, 3) of dims scaled 1 : 3; rotations of equal-variance
  uncorrelated dims leave the covariance (and so the Gaussian scores) unchanged."""
  z = (z - z.mean(0)) / z.std(0) * np.array([1.0, 3.0, 1.0, 3.0, 1.0])
  t = np.deg2rad(degrees)
  rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
  out = z.copy()
  out[:, :2] = z[:, :2] @ rot.T
  out[:, 2:4] = z[:, 2:4] @ rot.T
  return out


def test_independent_code_near_zero_and_rotation_increases_dependence():
  f = data.factors(3000)
  z = data.identity_code(f, noise=0.01)
  scores = [unsupervised.unsupervised_scores(_rotate_unequal(z, a)) for a in (0, 15, 30, 45)]
  for key in ('gaussian_total_correlation', 'gaussian_wasserstein_correlation_norm',
              'mutual_info_score'):
    values = [s[key] for s in scores]
    assert values[0] < 0.05, (key, values)
    assert all(a < b for a, b in zip(values, values[1:])), (key, values)


def test_degenerate_inputs():
  z = np.random.default_rng(0).standard_normal((500, 4))
  z[:, 2] = 3.0
  out = unsupervised.unsupervised_scores(z)
  assert all(np.isfinite(out[k]) for k in ('gaussian_total_correlation',
                                           'gaussian_wasserstein_correlation_norm',
                                           'mutual_info_score'))
  dup = np.concatenate([z[:, :1], z[:, :1]], axis=1)
  assert unsupervised.unsupervised_scores(dup)['gaussian_total_correlation'] == np.inf
  assert unsupervised.unsupervised_scores(np.ones((50, 3)))['gaussian_total_correlation'] == 0.0
  with pytest.raises(ValueError):
    unsupervised.unsupervised_scores(z[:1])


def test_matches_dlib():
  ref = data.dlib('unsupervised')
  utils = data.dlib('utils')
  f = data.factors(2000)
  z = data.rotate_pairs(data.identity_code(f, noise=0.05, extra_dims=2), 20)
  out = unsupervised.unsupervised_scores(z)
  cov = np.cov(z.T)
  assert abs(out['gaussian_total_correlation'] - ref.gaussian_total_correlation(cov)) < 1e-6
  assert abs(out['gaussian_wasserstein_correlation']
             - ref.gaussian_wasserstein_correlation(cov)) < 1e-6
  bins = utils.make_discretizer(z.T)
  mi = utils.discrete_mutual_info(bins, bins)
  np.fill_diagonal(mi, 0)
  assert abs(out['mutual_info_score'] - mi.sum() / (z.shape[1] ** 2 - z.shape[1])) < 1e-6
