"""Pieces shared by the procedural renderers: factor checks, chunking and lazily filled tables.

Every renderer splits an image into what depends on a few factors (a sprite, a scene's geometry,
a label map) and what is cheap per image (a shift, a palette). The expensive part is computed
once per distinct value and kept in a `LazyTable`, so rendering the full grid costs one table
plus a gather per image, and a test that renders ten images computes ten entries, not the table.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Sequence

import numpy as np

#: Images processed per vectorised step; bounds the memory of temporaries.
CHUNK_SIZE = 4096


def check_factors(factors: np.ndarray, factor_sizes: Sequence[int], name: str) -> np.ndarray:
  """Returns `factors` as int64 `[n, K]`, or raises a ValueError naming what is wrong."""
  factors = np.asarray(factors)
  k = len(factor_sizes)
  if factors.ndim != 2 or factors.shape[1] != k:
    raise ValueError(f'{name}: factors must have shape [n, {k}], got {factors.shape}')
  if factors.size and not np.issubdtype(factors.dtype, np.integer):
    raise ValueError(f'{name}: factors must be integer indices, got dtype {factors.dtype}')
  factors = factors.astype(np.int64, copy=False)
  if factors.size:
    sizes = np.asarray(factor_sizes)
    bad = (factors < 0) | (factors >= sizes)
    if bad.any():
      row, col = np.argwhere(bad)[0]
      raise ValueError(
          f'{name}: factor {col} of row {row} is {factors[row, col]}, outside '
          f'[0, {factor_sizes[col]})'
      )
  return factors


def chunks(n: int, size: int = CHUNK_SIZE) -> Iterator[slice]:
  """Slices covering `range(n)` in pieces of at most `size`."""
  for start in range(0, n, size):
    yield slice(start, min(start + size, n))


def render_in_chunks(
    render_chunk: Callable[[np.ndarray], np.ndarray],
    factors: np.ndarray,
    image_shape: tuple[int, int, int],
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
  """Fills a uint8 `[n, *image_shape]` array by calling `render_chunk` on slices of `factors`."""
  out = np.empty((factors.shape[0], *image_shape), np.uint8)
  for s in chunks(factors.shape[0], chunk_size):
    out[s] = render_chunk(factors[s])
  return out


class LazyTable:
  """An array of `num_entries` rows computed on first use, a batch of missing rows at a time.

  `compute_fn(ids int [m]) -> array [m, ...]` must be pure; each row is computed once per
  process. Lookups are thread-safe (a lock guards the fill).
  """

  def __init__(self, num_entries: int, compute_fn: Callable[[np.ndarray], np.ndarray],
               chunk_size: int = 256):
    self._compute_fn = compute_fn
    self._chunk_size = chunk_size
    self._done = np.zeros(num_entries, bool)
    self._values: np.ndarray | None = None
    self._lock = threading.Lock()

  def __call__(self, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    if not self._done[ids].all():
      with self._lock:
        todo = np.unique(ids[~self._done[ids]])
        for s in chunks(todo.size, self._chunk_size):
          values = self._compute_fn(todo[s])
          if self._values is None:
            self._values = np.zeros((self._done.size, *values.shape[1:]), values.dtype)
          self._values[todo[s]] = values
          self._done[todo[s]] = True
    return self._values[ids]

  def fill(self) -> np.ndarray:
    """Computes every row; returns the whole table."""
    return self(np.arange(self._done.size))
