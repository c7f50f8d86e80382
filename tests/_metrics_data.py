"""Synthetic factors and codes for the metric tests (not a test module)."""

import numpy as np
import pytest

DSPRITES_SIZES = (3, 6, 40, 32, 32)


def factors(n, sizes=DSPRITES_SIZES, seed=0):
  """[n, K] factors drawn uniformly and independently per factor."""
  rng = np.random.default_rng(seed)
  return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def identity_code(f, sizes=DSPRITES_SIZES, noise=0.0, extra_dims=0, seed=1):
  """Normalised factors (each in [0, 1]) plus Gaussian noise, plus `extra_dims` noise-only dims."""
  rng = np.random.default_rng(seed)
  z = f / (np.asarray(sizes) - 1.0)
  z = np.concatenate([z, np.zeros((f.shape[0], extra_dims))], axis=1)
  return z + noise * rng.standard_normal(z.shape)


def rotate_pairs(z, degrees, pairs=((0, 1), (2, 3))):
  """Rotates each listed pair of (standardised) dimensions by `degrees`."""
  z = (z - z.mean(0)) / z.std(0)
  out = z.copy()
  t = np.deg2rad(degrees)
  for i, j in pairs:
    out[:, i] = np.cos(t) * z[:, i] - np.sin(t) * z[:, j]
    out[:, j] = np.sin(t) * z[:, i] + np.cos(t) * z[:, j]
  return out


def train_test(n_train, n_test, sizes=DSPRITES_SIZES, noise=0.05, extra_dims=0, seed=0):
  f_tr = factors(n_train, sizes, seed)
  f_te = factors(n_test, sizes, seed + 100)
  return (identity_code(f_tr, sizes, noise, extra_dims, seed + 1), f_tr,
          identity_code(f_te, sizes, noise, extra_dims, seed + 101), f_te)


def dlib(name):
  """A disentanglement_lib metric module, or skip the test when the package is absent."""
  pytest.importorskip('disentanglement_lib')
  from disentangle_jax.metrics import _dlib_reference

  _dlib_reference.bind_discretizer()
  return _dlib_reference.load(name)


def strictly_decreasing(values, slack=0.0):
  return all(a > b - slack for a, b in zip(values, values[1:])) and values[0] > values[-1]
