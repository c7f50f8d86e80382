"""Histogram discretisation and discrete mutual information, vectorised over all pairs.

dlib discretises each code dimension with `np.digitize(v, np.histogram(v, 20)[1][:-1])`: 20
equal-width bins between the column's min and max (min - 0.5 .. max + 0.5 for a constant column),
integer bins 1..20, the maximum in bin 20. Mutual information is sklearn's `mutual_info_score` (nats)
of each (code, factor) pair and a factor's entropy is `mutual_info_score(y, y)`.

Here the discretisation is one array expression over all columns, and the mutual information of all
(code, factor) pairs at once comes from one contingency tensor built by a one-hot matmul; no Python
loop over pairs. `histogram_discretize` runs in numpy on concrete arrays, bit for bit as numpy's
`histogram` places the edges (XLA computes `(max - min) / 20` as a multiplication by 0.05, which
moves an edge by an ulp, and points exactly on an edge, as in a code equal to the factors, would
change bins); on traced arrays it runs in `jax.numpy` with that caveat. The mutual-information core
is jit-compatible.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics._common import (
  MIN_POINTS,
  check_codes,
  check_factors,
  float64,
  label_encode,
)


def histogram_edges(x: np.ndarray, num_bins: int = 20) -> np.ndarray:
  """[N, D] -> [num_bins + 1, D] edges, equal to `np.histogram(x[:, j], num_bins)[1]` per column."""
  lo = x.min(axis=0)
  hi = x.max(axis=0)
  same = lo == hi
  lo = np.where(same, lo - 0.5, lo).astype(x.dtype)
  hi = np.where(same, hi + 0.5, hi).astype(x.dtype)
  return np.linspace(lo, hi, num_bins + 1, axis=0)


def histogram_discretize(x: ArrayLike, num_bins: int = 20):
  """dlib's histogram discretiser: [N, D] codes -> [N, D] int32 bins in 1..num_bins.

  Bin j holds edges[j-1] <= v < edges[j] of the column's `num_bins` equal-width bins; the maximum
  lands in the last bin. A constant column lands in bin num_bins // 2 + 1.

  Args:
    x: [N, D] real codes; numpy or concrete arrays are binned in numpy (exactly as dlib), traced
      JAX arrays in jax.numpy.
    num_bins: number of bins (dlib: 20).

  Returns:
    [N, D] int32 bin indices (numpy for concrete input, a JAX array when traced).

  Raises:
    ValueError: NaN or infinite values (concrete input only).
  """
  if isinstance(x, jax.core.Tracer):
    return _histogram_discretize_traced(x, num_bins)
  x = check_codes(x)
  inner = histogram_edges(x, num_bins)[:-1]  # [B, D]
  # np.digitize(v, inner) for increasing edges = number of edges <= v.
  return (x[:, None, :] >= inner[None, :, :]).sum(axis=1).astype(np.int32)


def _histogram_discretize_traced(x, num_bins):
  lo = x.min(axis=0)
  hi = x.max(axis=0)
  same = lo == hi
  lo = jnp.where(same, lo - 0.5, lo)
  hi = jnp.where(same, hi + 0.5, hi)
  inner = jnp.arange(num_bins, dtype=x.dtype)[:, None] * ((hi - lo) / num_bins) + lo
  return (x[:, None, :] >= inner[None, :, :]).sum(axis=1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=('num_a', 'num_b'))
def mutual_info_matrix(a: jax.Array, b: jax.Array, *, num_a: int, num_b: int) -> jax.Array:
  """Discrete mutual information (nats) of every column pair: sklearn's `mutual_info_score`.

  Args:
    a: [N, A] integer labels in [0, num_a).
    b: [N, B] integer labels in [0, num_b).
    num_a, num_b: label ranges (static).

  Returns:
    [A, B] with MI(a[:, i], b[:, j]); as sklearn, terms below machine epsilon are dropped and the
    sum is clipped at 0.
  """
  n = a.shape[0]
  dtype = jnp.result_type(float)
  oa = jax.nn.one_hot(a, num_a, dtype=dtype).reshape(n, -1)  # [N, A*Ka]
  ob = jax.nn.one_hot(b, num_b, dtype=dtype).reshape(n, -1)
  joint = (oa.T @ ob).reshape(a.shape[1], num_a, b.shape[1], num_b)  # counts
  na = oa.sum(0).reshape(a.shape[1], num_a, 1, 1)
  nb = ob.sum(0).reshape(1, 1, b.shape[1], num_b)
  safe = jnp.where(joint > 0, joint, 1.0)
  terms = joint / n * (jnp.log(safe) + jnp.log(n) - jnp.log(jnp.where(na > 0, na, 1.0))
                       - jnp.log(jnp.where(nb > 0, nb, 1.0)))
  # As sklearn: terms below machine epsilon are rounding error (a constant column has MI 0).
  terms = jnp.where((joint > 0) & (jnp.abs(terms) >= jnp.finfo(dtype).eps), terms, 0.0)
  return jnp.maximum(jnp.sum(terms, axis=(1, 3)), 0.0)


@functools.partial(jax.jit, static_argnames=('num_values',))
def discrete_entropy(y: jax.Array, *, num_values: int) -> jax.Array:
  """[N, K] integer labels in [0, num_values) -> [K] plug-in entropies (nats), MI(y, y)."""
  n = y.shape[0]
  counts = jax.nn.one_hot(y, num_values, dtype=jnp.result_type(float)).sum(0)  # [K, V]
  p = counts / n
  return -jnp.sum(jnp.where(counts > 0, p * jnp.log(jnp.where(counts > 0, p, 1.0)), 0.0), axis=1)


def codes_factors_mutual_info(codes, factors, num_bins: int = 20, *, metric: str = 'this metric'):
  """MI matrix [D, K] between 20-bin-discretised codes and label-encoded factors, and H(factors).

  Needs `MIN_POINTS` points (ValueError naming `metric`); a constant code dimension (see
  `_common.constant_dims`) has MI exactly 0 with every factor.

  Returns:
    (mutual_info [D, K], factor_entropy [K], encoded factors [N, K], factor sizes).
  """
  codes = check_codes(codes, min_points=MIN_POINTS, metric=metric)
  factors = check_factors(factors, codes.shape[0])
  y, sizes = label_encode(factors)
  bins = histogram_discretize(codes, num_bins)
  constant = np.ptp(codes, axis=0) == 0  # check_codes made near-constant columns exact
  width = max(sizes)
  with float64():
    mi = mutual_info_matrix(jnp.asarray(bins), jnp.asarray(y), num_a=num_bins + 1, num_b=width)
    h = discrete_entropy(jnp.asarray(y), num_values=width)
    mi = np.where(constant[:, None], 0.0, np.asarray(mi, np.float64))
    return mi, np.asarray(h, np.float64), y, sizes
