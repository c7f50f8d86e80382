"""Interventional Robustness Score (Suter et al. 2019) as dlib computes it.

The factors are discretised with the 20-bin histogram and constant code dimensions are dropped.
For factor k and each of its (binned) values v, `e = mean(z | v_k = v)` and the 99th percentile of
`|z - e|` over that group (per code dimension) is averaged over the values of k: `cum_dev[j, k]`.
`IRS_matrix = 1 - cum_dev / maxdev` with `maxdev_j = max_n |z_nj - mean z_j|`; a dimension's score
is its best factor's entry and IRS is their average weighted by maxdev. The paper uses the maximum
(quantile 1.0) instead of the 99th percentile.

dlib quirk: its `num_active_dims` is the *sum of the active code values* (about 25,000 on an
identity code), not a count; here `num_active_dims` is the count.
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
  require_varying,
)
from disentangle_jax.metrics.discretize import histogram_discretize


def _group_quantile(values, groups, counts, starts, quantile):
  """Per-group linear-interpolation quantile (numpy's default) of values along axis 1.

  values: [K, N, D]; groups: [K, N] group ids; counts/starts: [K, G]. Returns [K, G, D].
  """
  keys = (values, jnp.broadcast_to(groups[:, :, None], values.shape))
  order = jnp.lexsort(keys, axis=1)  # group-major, ascending values within a group
  ordered = jnp.take_along_axis(values, order, axis=1)
  n = jnp.maximum(counts, 1).astype(values.dtype)
  virtual = quantile * (n - 1)
  lo = jnp.floor(virtual)
  gamma = (virtual - lo)[..., None]
  lo_idx = (starts + lo.astype(starts.dtype))[..., None]
  hi_idx = (starts + jnp.minimum(lo + 1, n - 1).astype(starts.dtype))[..., None]
  d = values.shape[2]
  a = jnp.take_along_axis(ordered, jnp.broadcast_to(lo_idx, lo_idx.shape[:2] + (d,)), axis=1)
  b = jnp.take_along_axis(ordered, jnp.broadcast_to(hi_idx, hi_idx.shape[:2] + (d,)), axis=1)
  diff = b - a
  # numpy's _lerp, including its switch to the upper end for gamma >= 0.5.
  return jnp.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


@functools.partial(jax.jit, static_argnames=('num_groups',))
def irs_core(latents, groups, *, num_groups: int, diff_quantile: float = 0.99):
  """dlib's `scalable_disentanglement_score` on active latents.

  Args:
    latents: [N, D] codes with no constant dimension.
    groups: [N, K] integer (discretised) factor values in [0, num_groups).
    num_groups: static bound on the factor values.
    diff_quantile: quantile of the within-group deviations (dlib 0.99; the paper 1.0).

  Returns:
    dict: 'avg_score', 'disentanglement_scores' [D], 'parents' [D], 'IRS_matrix' [D, K],
    'max_deviations' [D].
  """
  groups = groups.T  # [K, N]
  onehot = jax.nn.one_hot(groups, num_groups, dtype=latents.dtype)  # [K, N, G]
  counts = onehot.sum(1)  # [K, G]
  means = jnp.einsum('kng,nd->kgd', onehot, latents) / jnp.maximum(counts, 1)[..., None]
  e = jnp.take_along_axis(means, groups[:, :, None], axis=1)  # [K, N, D]
  diffs = jnp.abs(latents[None] - e)
  starts = jnp.cumsum(counts, axis=1) - counts
  q = _group_quantile(diffs, groups, counts.astype(jnp.int32), starts.astype(jnp.int32), diff_quantile)
  present = counts > 0
  cum = jnp.sum(jnp.where(present[..., None], q, 0.0), axis=1) / jnp.sum(present, 1)[:, None]
  max_dev = jnp.max(jnp.abs(latents - latents.mean(0)), axis=0)
  irs_matrix = 1.0 - cum.T / max_dev[:, None]
  scores = irs_matrix.max(axis=1)
  total = jnp.sum(max_dev)
  avg = jnp.where(total > 0, jnp.sum(scores * max_dev) / jnp.where(total > 0, total, 1.0),
                  jnp.mean(scores))
  return {
    'avg_score': avg,
    'disentanglement_scores': scores,
    'parents': irs_matrix.argmax(axis=1),
    'IRS_matrix': irs_matrix,
    'max_deviations': max_dev,
  }


def irs(codes: ArrayLike, factors: ArrayLike, *, diff_quantile: float = 0.99,
        num_bins: int = 20) -> dict:
  """dlib's IRS of codes against factors.

  Args:
    codes: [N, D] codes; factors: [N, K] integer labels (binned into `num_bins` histogram bins,
      as dlib does); diff_quantile: 0.99 (dlib) or 1.0 (paper).

  Returns:
    'IRS' (float), 'num_active_dims' (a count), 'active_dims' [D] bool, and over the active
    dimensions 'IRS_matrix' [D_active, K], 'disentanglement_scores', 'parents', 'max_deviations'.

  Degenerate inputs (the package's policy): NaN/inf and fewer than 2 points raise ValueError;
  constant code dimensions (within `_common.CONSTANT_RTOL`) are dropped and IRS is 0 when all are
  constant (as dlib); a constant factor forms one group and is a valid column; no varying factor, ValueError.
  """
  x = check_codes(codes, min_points=MIN_POINTS, metric='irs')
  y = check_factors(factors, x.shape[0])
  require_varying(label_encode(y)[1], 'irs')
  groups = histogram_discretize(y.astype(np.float64), num_bins)
  # check_codes made near-constant columns exact; a variance test would pass their rounding.
  active = np.ptp(x, axis=0) > 0
  out = {'num_active_dims': int(active.sum()), 'active_dims': active}
  if not active.any():
    out.update(IRS=0.0, IRS_matrix=np.zeros((0, y.shape[1])),
               disentanglement_scores=np.zeros(0), parents=np.zeros(0, np.int64),
               max_deviations=np.zeros(0))
    return out
  with float64():
    core = irs_core(jnp.asarray(x[:, active]), jnp.asarray(groups), num_groups=num_bins + 1,
                    diff_quantile=diff_quantile)
    core = {k: np.asarray(v) for k, v in core.items()}
  out['IRS'] = float(core.pop('avg_score'))
  out.update(core)
  return out
