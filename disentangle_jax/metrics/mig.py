"""Mutual Information Gap (Chen et al. 2018) with dlib's estimator.

dlib (`discrete_mig`): discretise each code dimension into 20 equal-width bins, take the discrete
mutual information I(z_j; v_k) of every (code, factor) pair, and average over factors the gap between
the largest and second-largest I(z_j; v_k) over codes, divided by the factor's entropy H(v_k). All
five dSprites factors are included. This is not the paper's Monte-Carlo estimator (which drops the
shape factor and uses the encoder distribution); the two are not numerically comparable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics._common import MI_TOL, float64, require_varying
from disentangle_jax.metrics.discretize import codes_factors_mutual_info


@jax.jit
def mig_from_mutual_info(mutual_info: jax.Array, entropy: jax.Array) -> dict[str, jax.Array]:
  """The MIG core: [D, K] mutual information and [K] factor entropies -> scores.

  A factor with zero entropy (a single value) has gap 0 and is left out of the mean. With a single
  code dimension the second-largest MI is taken as 0.

  Returns:
    'discrete_mig' (mean gap over factors with H > 0; 0 when there is none), 'mig_per_factor' [K].
  """
  top = jnp.sort(mutual_info, axis=0)[::-1]
  second = top[1] if mutual_info.shape[0] > 1 else jnp.zeros_like(top[0])
  valid = entropy > MI_TOL
  gap = jnp.where(valid, (top[0] - second) / jnp.where(valid, entropy, 1.0), 0.0)
  score = jnp.sum(gap) / jnp.maximum(jnp.sum(valid), 1)
  return {'discrete_mig': score, 'mig_per_factor': gap}


def mig(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> dict:
  """Discrete MIG of codes against ground-truth factors, as dlib's `compute_mig`.

  Args:
    codes: [N, D] real codes (posterior means).
    factors: [N, K] integer factor labels (any integer values; each column is label-encoded).
    num_bins: histogram bins per code dimension (dlib: 20).

  Returns:
    dict with 'discrete_mig' (float), 'mig_per_factor' [K], 'mutual_info' [D, K] (nats) and
    'factor_entropy' [K] (nats).

  Degenerate inputs (the package's policy): NaN/inf codes and fewer than 2 points raise
  ValueError. A constant code dimension has MI 0. A factor with a single value (entropy 0; dlib
  returns NaN) is left out of the average and its gap is 0; if no factor varies, ValueError. N
  below the number of bins is allowed and gives dlib's (heavily biased) value.
  """
  mi, h, _, sizes = codes_factors_mutual_info(codes, factors, num_bins, metric='mig')
  require_varying(sizes, 'mig')
  with float64():
    out = mig_from_mutual_info(jnp.asarray(mi), jnp.asarray(h))
    out = {k: np.asarray(v) for k, v in out.items()}
  return {
    'discrete_mig': float(out['discrete_mig']),
    'mig_per_factor': out['mig_per_factor'],
    'mutual_info': mi,
    'factor_entropy': h,
  }
