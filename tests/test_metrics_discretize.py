"""Histogram discretisation and discrete MI against numpy/sklearn and hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from disentangle_jax.metrics import discretize


def _numpy_bins(x, num_bins=20):
  return np.stack([np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in x.T], axis=1)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_bins_equal_numpy_histogram_digitize(dtype):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((500, 6)).astype(dtype)
  x[:, 1] = rng.integers(0, 3, 500) / 2.0  # values exactly on bin edges
  x[:, 2] = 7.0  # constant column
  x[:, 3] = np.arange(500) % 40 / 39.0
  bins = discretize.histogram_discretize(x)
  np.testing.assert_array_equal(bins, _numpy_bins(x))
  assert bins.min() >= 1 and bins.max() <= 20


def test_traced_bins_agree_with_numpy_off_the_edges():
  x = np.random.default_rng(1).standard_normal((300, 4)).astype(np.float32)
  traced = jax.jit(discretize.histogram_discretize)(jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(traced), _numpy_bins(x))


def test_mutual_information_hand_computed():
  # 2x2 table with counts [[2, 1], [0, 1]] over 4 points.
  a = np.array([[0], [0], [0], [1]])
  b = np.array([[0], [0], [1], [1]])
  p = np.array([[2, 1], [0, 1]]) / 4
  pa, pb = p.sum(1), p.sum(0)
  expected = sum(p[i, j] * np.log(p[i, j] / (pa[i] * pb[j]))
                 for i in range(2) for j in range(2) if p[i, j] > 0)
  mi = discretize.mutual_info_matrix(jnp.asarray(a), jnp.asarray(b), num_a=2, num_b=2)
  np.testing.assert_allclose(float(mi[0, 0]), expected, rtol=1e-6)
  same = discretize.mutual_info_matrix(jnp.asarray(b), jnp.asarray(b), num_a=2, num_b=2)
  np.testing.assert_allclose(float(same[0, 0]), np.log(2), rtol=1e-6)
  indep = discretize.mutual_info_matrix(
    jnp.asarray([[0], [0], [1], [1]]), jnp.asarray([[0], [1], [0], [1]]), num_a=2, num_b=2)
  assert float(indep[0, 0]) == 0.0


def test_mutual_info_matrix_equals_sklearn_for_every_pair():
  rng = np.random.default_rng(2)
  codes = rng.standard_normal((1000, 4))
  factors = rng.integers(0, 5, (1000, 3))
  codes[:, 0] += factors[:, 1]
  mi, h, _, _ = discretize.codes_factors_mutual_info(codes, factors)
  bins = _numpy_bins(codes)
  for i in range(4):
    for j in range(3):
      assert abs(mi[i, j] - skm.mutual_info_score(factors[:, j], bins[:, i])) < 1e-12
  for j in range(3):
    assert abs(h[j] - skm.mutual_info_score(factors[:, j], factors[:, j])) < 1e-12


def test_nan_codes_raise():
  x = np.zeros((10, 2))
  x[3, 1] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    discretize.histogram_discretize(x)
