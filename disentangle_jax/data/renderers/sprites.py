"""A Sprites-equivalent avatar renderer (placeholder drawing; the real avatars land next)."""

from __future__ import annotations

import numpy as np

from disentangle_jax.data.renderers import _common

FACTOR_NAMES = ('body', 'skin', 'vest', 'hair', 'arm', 'leg', 'pose')
FACTOR_SIZES = (2, 4, 3, 6, 2, 2, 168)
IMAGE_SHAPE = (64, 64, 3)
REDUCED_STRIDES = (1, 1, 1, 1, 1, 1, 4)


def factor_values(name: str) -> np.ndarray:
  """Index of each value (the attributes are categorical)."""
  if name not in FACTOR_NAMES:
    raise ValueError(f'sprites has no factor {name!r}; factors are {FACTOR_NAMES}')
  return np.arange(FACTOR_SIZES[FACTOR_NAMES.index(name)], dtype=np.float64)


def render(factors: np.ndarray) -> np.ndarray:
  factors = _common.check_factors(factors, FACTOR_SIZES, 'sprites')
  out = np.zeros((factors.shape[0], *IMAGE_SHAPE), np.uint8)
  for k in range(len(FACTOR_SIZES)):
    rows = slice(8 * k + 4, 8 * k + 10)
    value = factors[:, k].astype(np.float64) / (FACTOR_SIZES[k] - 1)
    out[:, rows, 8:56, k % 3] = np.round(40 + 215 * value).astype(np.uint8)[:, None, None]
  return out
