"""Input checks and label encoding shared by the array metrics."""

from __future__ import annotations

import jax
import numpy as np
from jax.typing import ArrayLike


def float64():
  """Context in which the metric cores run: JAX float64, so results match numpy/sklearn to 1e-12.

  The cores are plain `jax.numpy` and run under float32 too; the public functions use float64
  because the reference (dlib: numpy/sklearn) does, and differences of 1e-7 would otherwise show.
  """
  return jax.enable_x64(True)


def check_codes(codes: ArrayLike, name: str = 'codes') -> np.ndarray:
  """Returns `codes` as a float64 [N, D] numpy array, or raises ValueError on NaN/inf or bad shape."""
  x = np.asarray(codes)
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    raise ValueError(f'{name} must be a non-empty [N, D] array, got shape {x.shape}')
  if not np.issubdtype(x.dtype, np.number):
    raise ValueError(f'{name} must be numeric, got {x.dtype}')
  x = x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x
  if not np.all(np.isfinite(x)):
    bad = np.unique(np.nonzero(~np.isfinite(x))[1])
    raise ValueError(f'{name} has NaN or infinite values in dimension(s) {bad.tolist()}')
  return x


def check_factors(factors: ArrayLike, num_points: int | None = None, name: str = 'factors'):
  """Returns `factors` as an int64 [N, K] array (label values kept), or raises ValueError."""
  y = np.asarray(factors)
  if y.ndim == 1:
    y = y[:, None]
  if y.ndim != 2 or y.shape[1] == 0:
    raise ValueError(f'{name} must be an [N, K] array, got shape {y.shape}')
  if num_points is not None and y.shape[0] != num_points:
    raise ValueError(f'{name} has {y.shape[0]} rows, the codes have {num_points}')
  if not np.issubdtype(y.dtype, np.integer):
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
      raise ValueError(f'{name} must hold integer labels')
    y = y.astype(np.int64)
  return y.astype(np.int64)


def label_encode(factors: ArrayLike) -> tuple[np.ndarray, tuple[int, ...]]:
  """Maps each column's sorted distinct values to 0..C-1. Returns ([N, K] int32, sizes C_k)."""
  y = np.asarray(factors)
  cols, sizes = [], []
  for col in y.T:
    values, inverse = np.unique(col, return_inverse=True)
    cols.append(inverse.reshape(-1))
    sizes.append(int(values.size))
  return np.stack(cols, axis=1).astype(np.int32), tuple(sizes)


def require_varying(sizes) -> np.ndarray:
  """[K] bool mask of factors with at least two values; ValueError when there is none."""
  varying = np.asarray(sizes) > 1
  if not varying.any():
    raise ValueError('every factor is constant: there is nothing to measure')
  return varying
