"""dlib's unsupervised scores: Gaussian total correlation, Wasserstein dependency, mean pairwise MI.

From the code covariance `S = cov(z)` (ddof = 1), as Locatello et al.
(ICML 2019) and dlib define them:
- Gaussian total correlation `0.5 * (sum_i log S_ii - logdet S)`: the KL divergence between N(0, S)
  and N(0, diag S).
- Gaussian Wasserstein dependency `2 tr S - 2 tr sqrt(diag(S) S)`: the squared W2 distance between
  the same two Gaussians; the normalised version divides by tr S. `tr sqrt(diag(S) S)` is the sum of
  the square roots of the eigenvalues of the symmetric `diag(S)^1/2 S diag(S)^1/2`.
- Mutual-information score: the mean over ordered pairs i != j of the discrete MI between the
  20-bin discretised code dimensions i and j.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disentangle_jax.metrics._common import MIN_POINTS, check_codes, float64
from disentangle_jax.metrics.discretize import histogram_discretize, mutual_info_matrix


@jax.jit
def gaussian_scores(cov: jax.Array) -> dict[str, jax.Array]:
  """The covariance-based scores of a [D, D] covariance with a positive diagonal."""
  diag = jnp.diag(cov)
  sign, logdet = jnp.linalg.slogdet(cov)
  # A singular (collinear) covariance has infinite total correlation.
  tc = jnp.where(sign > 0, 0.5 * (jnp.sum(jnp.log(diag)) - logdet), jnp.inf)
  root = jnp.sqrt(diag)
  sym = root[:, None] * cov * root[None, :]
  eig = jnp.linalg.eigvalsh(0.5 * (sym + sym.T))
  trace = jnp.sum(diag)
  wass = 2.0 * trace - 2.0 * jnp.sum(jnp.sqrt(jnp.maximum(eig, 0.0)))
  return {
    'gaussian_total_correlation': tc,
    'gaussian_wasserstein_correlation': wass,
    'gaussian_wasserstein_correlation_norm': wass / trace,
  }


@functools.partial(jax.jit, static_argnames=('num_bins',))
def mean_pairwise_mutual_info(bins: jax.Array, num_bins: int = 20) -> tuple[jax.Array, jax.Array]:
  """[N, D] bins in 1..num_bins -> (mean off-diagonal MI, the [D, D] MI matrix with zero diagonal)."""
  d = bins.shape[1]
  mi = mutual_info_matrix(bins, bins, num_a=num_bins + 1, num_b=num_bins + 1)
  mi = mi * (1.0 - jnp.eye(d, dtype=mi.dtype))
  score = jnp.sum(mi) / max(d * d - d, 1)
  return score, mi


def unsupervised_scores(codes: ArrayLike, *, num_bins: int = 20) -> dict:
  """dlib's `unsupervised_metrics` on an [N, D] code.

  Returns:
    'gaussian_total_correlation', 'gaussian_wasserstein_correlation',
    'gaussian_wasserstein_correlation_norm', 'mutual_info_score' (floats), 'covariance' [D, D]
    and 'mutual_info_matrix' [D, D] (zero diagonal).

  Degenerate inputs (the package's policy): NaN/inf codes raise ValueError, and so do fewer than
  2 points or no more points than non-constant dimensions (N <= D_active): the covariance of so few
  points is singular, and its total correlation infinite whatever the code. Constant code
  dimensions (within `_common.CONSTANT_RTOL`) carry no dependence and would make dlib's total
  correlation NaN (log 0 - log 0): the covariance scores are computed over the non-constant
  dimensions (all 0 when every dimension is constant); they still count in the MI score's D^2 - D
  denominator, with MI 0. Exactly collinear dimensions in a large enough sample give an infinite
  total correlation (the Gaussian dependence is infinite), not NaN. With D = 1 the MI score is 0.
  """
  x = check_codes(codes, min_points=MIN_POINTS, metric='unsupervised')
  # check_codes made near-constant columns exact; their computed variance would be rounding.
  active = np.ptp(x, axis=0) > 0
  if x.shape[0] <= active.sum():
    raise ValueError(
      f'unsupervised needs more points than non-constant code dimensions ({int(active.sum())}), '
      f'got {x.shape[0]}: the covariance of fewer points is singular; pass a larger sample'
    )
  cov = np.atleast_2d(np.cov(x, rowvar=False))
  bins = histogram_discretize(x, num_bins)
  with float64():
    if active.any():
      sub = cov[np.ix_(active, active)]
      g = {k: float(v) for k, v in gaussian_scores(jnp.asarray(sub)).items()}
    else:
      g = dict.fromkeys(
        ['gaussian_total_correlation', 'gaussian_wasserstein_correlation',
         'gaussian_wasserstein_correlation_norm'], 0.0)
    score, mi = mean_pairwise_mutual_info(jnp.asarray(bins), num_bins=num_bins)
    g['mutual_info_score'] = float(score)
    g['mutual_info_matrix'] = np.asarray(mi)
  g['covariance'] = cov
  return g
