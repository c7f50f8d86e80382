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


#: A code dimension is constant when its range is at most this times its largest magnitude: an
#: exactly constant column, or one that varies only by float32 rounding (a dead unit). Such a column
#: is made exactly constant by `check_codes`, so that every metric treats it as carrying nothing.
CONSTANT_RTOL = 1e-6
#: Mutual information (nats) at or below this is zero: rounding leaves about 1e-16 behind.
MI_TOL = 1e-12
#: Points a metric needs in a sample it estimates or fits from (one point has no variation).
MIN_POINTS = 2


def pad_to(a: np.ndarray, shape, value=0) -> np.ndarray:
  """`a` grown at the end of each axis to `shape`, the new entries `value` (a new array)."""
  out = np.full(shape, value, a.dtype)
  out[tuple(slice(0, k) for k in a.shape)] = a
  return out


def constant_dims(x: np.ndarray) -> np.ndarray:
  """[D] bool: columns of `x` [N, D] whose range is at most `CONSTANT_RTOL` x their max |value|."""
  x = np.asarray(x)
  return np.ptp(x, axis=0) <= CONSTANT_RTOL * np.abs(x).max(axis=0)


def check_codes(
  codes: ArrayLike, name: str = 'codes', *, min_points: int = 1, metric: str | None = None
) -> np.ndarray:
  """Returns `codes` as a float [N, D] numpy array, or raises ValueError.

  Errors: not 2-D, empty, non-numeric, NaN/inf, or fewer than `min_points` rows (the message names
  `metric`). Constant dimensions (`constant_dims`) are returned exactly constant (their mean), so
  that rounding noise on a dead unit never passes for information.
  """
  x = np.asarray(codes)
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    hint = '; for a single code dimension pass codes[:, None]' if x.ndim == 1 else ''
    raise ValueError(f'{name} must be a non-empty [N, D] array, got shape {x.shape}{hint}')
  if not np.issubdtype(x.dtype, np.number):
    raise ValueError(f'{name} must be numeric, got {x.dtype}')
  x = x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x
  if not np.all(np.isfinite(x)):
    bad = np.unique(np.nonzero(~np.isfinite(x))[1])
    raise ValueError(f'{name} has NaN or infinite values in dimension(s) {bad.tolist()}')
  require_points(x.shape[0], min_points, metric or 'this metric', name)
  const = constant_dims(x)
  if const.any() and np.any(np.ptp(x[:, const], axis=0) > 0):
    x = x.copy()
    x[:, const] = x[:, const].mean(axis=0)
  return x


def standardise(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
  """Standardises with the training mean and std (ddof 0); a constant column becomes exactly 0.

  The test is the range (`check_codes` made near-constant columns exact): the std of a constant
  column computed in floating point is about 1e-17, not 0, and dividing by it would turn rounding
  into unit-variance noise.
  """
  mean = x_train.mean(0)
  std = np.where(np.ptp(x_train, axis=0) > 0, x_train.std(0), np.inf)
  return tuple((x - mean) / std for x in (x_train,) + others)


def require_points(n: int, minimum: int, metric: str, name: str = 'codes') -> None:
  """ValueError when a sample has fewer than `minimum` points (the too-few-samples policy)."""
  if n < minimum:
    raise ValueError(
      f'{metric} needs at least {minimum} points in {name}, got {n}: pass a larger sample'
    )


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


def require_varying(sizes, metric: str | None = None) -> np.ndarray:
  """[K] bool mask of factors with at least two values; ValueError when there is none."""
  varying = np.asarray(sizes) > 1
  if not varying.any():
    prefix = f'{metric}: ' if metric else ''
    raise ValueError(f'{prefix}every factor is constant: there is nothing to measure')
  return varying
